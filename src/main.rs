use valfs::cli::{self, Cli, Command};
use valfs::daemon;

fn main() {
    use clap::Parser;
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
    let mut cli = Cli::parse_from(std::iter::once(program).chain(argv.iter().cloned()));
    cli.args = argv;
    let result = match &cli.command {
        Command::Mount(args) => cli
            .mount_config(args)
            .map_err(|e| e.to_string())
            .and_then(|config| daemon::mount(&config).map_err(|e| e.to_string())),
        Command::Umount {
            mountpoint,
            if_stale,
        } => daemon::umount(mountpoint, *if_stale).map_err(|e| e.to_string()),
        Command::Status => daemon::status(&mut std::io::stdout().lock()).map_err(|e| e.to_string()),
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
