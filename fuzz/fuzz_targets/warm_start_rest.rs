#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bgpsentry::fuzzing::warm_start_rest(data);
});
