//! The `dkp` binary: `serve`, `worker`, `migrate`, `import`, `bench`. Start-up failures print one
//! clear line and exit non-zero, never a panic.

use std::process::ExitCode;

use clap::Parser;
use dkp::config::{Cli, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    dkp::telemetry::init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dkp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dkp: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let app = dkp::app::Application::build(args.config()?).await?;
            app.run_until_stopped(dkp::app::stop_signal()).await
        }
        Command::Worker(args) => dkp::app::run_worker(args, dkp::app::stop_signal()).await,
        Command::Migrate(args) => {
            dkp::store::migrate_only(&args.location()?).await?;
            eprintln!("dkp: migrations applied");
            Ok(())
        }
        Command::Import(args) => dkp::cli::import(args).await,
        Command::Bench(args) => dkp_bench::run(args).await,
        Command::Audit(args) => dkp::cli::audit(args).await,
    }
}
