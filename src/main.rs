use clap::Parser;
use valfs::cli::{self, Cli, Command};
use valfs::daemon;

fn main() {
    daemon::init_logging();
    let cli = Cli::parse();
    let result = match (&cli.command, cli.mount_args()) {
        (_, Some(args)) => daemon::mount(&args).map_err(|e| e.to_string()),
        (Command::Umount { mountpoint }, _) => {
            daemon::umount(mountpoint).map_err(|e| e.to_string())
        }
        _ => cli::run(&cli, &mut std::io::stdout().lock()).map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        if e.contains("Broken pipe") {
            return;
        }
        eprintln!("valfs: {e}");
        std::process::exit(1);
    }
}
