use std::process::ExitCode;

fn main() -> ExitCode {
    bgpsentry::cli::main()
}
