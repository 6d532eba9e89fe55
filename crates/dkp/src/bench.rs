//! `dkp bench`: measurements printed as figures (see BENCHMARKS.md).

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("no benchmark yet")
}
