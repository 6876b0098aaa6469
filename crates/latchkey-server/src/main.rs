//! `latchkey`: parse the command line, load the config, dispatch.

use std::process::ExitCode;

use clap::Parser;
use latchkey_server::cli::{Cli, Command, UsageError};
use latchkey_server::config::{Config, ConfigError};
#[cfg(feature = "demo")]
use latchkey_server::demo;
use latchkey_server::{admin, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}").replace('\n', " ");
            eprintln!("latchkey: {message}");
            if error.downcast_ref::<ConfigError>().is_some()
                || error.downcast_ref::<UsageError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    #[cfg(feature = "demo")]
    if let Command::Demo(args) = &cli.command {
        let config = demo::config(&args.data_dir, args.port_base)?;
        init_logging(&config);
        return runtime()?.block_on(demo::run(&args.data_dir, args.port_base));
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config);
    for note in &config.notes {
        tracing::debug!("{note}");
    }
    if let Command::Check = cli.command {
        config.check_database_files()?;
        return admin::check(&config, cli.json);
    }
    if let Command::Healthcheck = cli.command {
        return runtime()?.block_on(admin::healthcheck(&config));
    }
    if let Command::Serve = cli.command {
        config.check_database_files()?;
    }
    runtime()?.block_on(async move {
        match cli.command {
            Command::Serve => run::serve(config, |_| {}).await,
            Command::Clients(command) => admin::clients(&config, command, cli.json).await,
            Command::Users(command) => admin::users(&config, command, cli.json).await,
            Command::Sessions(command) => admin::sessions(&config, command, cli.json).await,
            Command::Grants(command) => admin::grants(&config, command, cli.json).await,
            Command::Keys(command) => admin::keys(&config, command, cli.json).await,
            Command::Migrate => admin::migrate(&config, cli.json).await,
            #[cfg(feature = "demo")]
            Command::Demo(_) => Ok(()),
            Command::Check | Command::Healthcheck => Ok(()),
        }
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One TLS provider for the whole process: aws-lc-rs, as for JOSE.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    // Colour only for a person at a terminal (and never with NO_COLOR set).
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}
