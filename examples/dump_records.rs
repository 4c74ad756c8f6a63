//! Prints each MRT record of a file as parsed (debugging aid for odd files).
use bgpkit_parser::chunk_mrt_record;
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump_records FILE");
    if std::env::var("FIRST").is_ok() {
        dbg_first(&path);
        return;
    }
    let mut r =
        bgpsentry::feeds::mrt::open_decompressed(std::path::Path::new(&path)).expect("open");
    while let Ok(raw) = chunk_mrt_record(&mut r) {
        println!("{:?}", raw.common_header);
        println!(
            "{:x?}",
            &raw.message_bytes[..raw.message_bytes.len().min(200)]
        );
        match raw.parse() {
            Ok(rec) => println!("{:#?}", rec.message),
            Err(e) => println!("ERR {e}"),
        }
    }
}
#[allow(dead_code)]
fn dbg_first(path: &str) {
    let mut r = bgpsentry::feeds::mrt::open_decompressed(std::path::Path::new(path)).unwrap();
    match chunk_mrt_record(&mut r) {
        Ok(_) => println!("ok"),
        Err(e) => println!("{:?}", e.error),
    }
}
