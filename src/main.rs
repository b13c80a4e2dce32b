//! `valfs`: parse the command line, run it, and turn the result into an exit code.

use valfs::cli::{self, Cli, Command};
use valfs::daemon;

fn main() {
    daemon::init_logging();
    let cli = Cli::from_env();
    let result = match &cli.command {
        Command::Mount(args) => cli
            .mount_config(args)
            .map_err(|e| e.to_string())
            .and_then(|config| daemon::mount(&config).map_err(|e| e.to_string())),
        Command::Umount {
            mountpoint,
            if_stale,
        } => daemon::umount(mountpoint, *if_stale).map_err(|e| e.to_string()),
        Command::Status => {
            cli::sync::status(&cli, &mut std::io::stdout().lock()).map_err(|e| e.to_string())
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
