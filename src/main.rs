//! Entry point: parse the command line and hand over to `cli`.

fn main() {
    std::process::exit(tgwa::cli::main());
}
