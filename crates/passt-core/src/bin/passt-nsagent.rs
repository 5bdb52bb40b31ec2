//! The namespace agent pasta mode starts; see `passt_core::nsagent`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(passt_core::nsagent::main(&args));
}
