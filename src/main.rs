use clap::Parser;
use valfs::cli::{self, Cli, Command};
use valfs::daemon;

fn main() {
    daemon::init_logging();
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let program = if argv.is_empty() {
        "valfs".into()
    } else {
        argv.remove(0)
    };
    let (argv, from_mount) = cli::helper_args(argv);
    if from_mount && let Some(home) = valfs::sys::passwd_home() {
        // mount(8) drops HOME and mount.fuse3 then sets /root, also for a user's mount
        // (fstab `user`): named stores are found from the user's real home.
        valfs::sys::set_home(&home);
    }
    let cli = Cli::parse_from(std::iter::once(program).chain(argv.iter().cloned()));
    let result = match (&cli.command, cli.mount_args(&argv)) {
        (_, Some(Ok(args))) => daemon::mount(&args).map_err(|e| e.to_string()),
        (_, Some(Err(e))) => Err(e.to_string()),
        (
            Command::Umount {
                mountpoint,
                if_stale,
            },
            _,
        ) => daemon::umount(mountpoint, *if_stale).map_err(|e| e.to_string()),
        (Command::Status, _) => {
            daemon::status(&mut std::io::stdout().lock()).map_err(|e| e.to_string())
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
