use clap::Parser;
use valfs::cli::{self, Cli};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    if let Err(e) = cli::run(&cli, &mut out) {
        eprintln!("valfs: {e}");
        std::process::exit(1);
    }
}
