//! Background jobs reporting to Sentry's Crons: one that succeeds, one that fails, one that
//! panics; each sends `in_progress` and then `ok` or `error` with its duration, and the first
//! creates its monitor (schedule, margins) on the server.
//!
//! ```sh
//! cargo run --example cron_jobs
//! ```
//!
//! With `ISOSCOPE_DSN` (or `SENTRY_DSN`) set, the check-ins go to that server; without, they
//! are printed as JSON lines on stdout (`"type": "check_in"`). Either way the example checks
//! that all six were delivered, and exits 0.

use std::time::Duration;

use isoscope::protocol::{IntervalUnit, MonitorConfig, MonitorSchedule};
use isoscope::{DataCategory, Monitor, Options};

async fn import_orders() -> Result<usize, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok(128)
}

async fn export_invoices() -> Result<(), String> {
    Err("the invoice store refused the upload".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A DSN from the environment, else JSON lines on stdout; panics are this example's own.
    let guard = isoscope::init(Options::new().release("cron-example@0.1.0").capture_panics(false))?;
    let before = isoscope::stats();

    let hourly = MonitorConfig::new(MonitorSchedule::interval(1, IntervalUnit::Hour)).checkin_margin(5).max_runtime(10);
    let imported = Monitor::new("import-orders")?.with_config(hourly)?.run(import_orders()).await?;
    let exported = isoscope::monitor("export-invoices", export_invoices()).await;
    // The panic is the example's point: kept off stderr.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = std::panic::catch_unwind(|| {
        isoscope::monitor_sync("rebuild-search-index", || -> Result<(), String> { panic!("index corrupt") })
    });
    std::panic::set_hook(default_hook);

    if !guard.flush(Duration::from_secs(10)) {
        return Err("some check-ins were not delivered (ISOSCOPE_DEBUG=1 says why)".into());
    }
    let monitor = isoscope::stats().since(&before).items(DataCategory::Monitor);
    let outcome = imported == 128 && exported.is_err() && panicked.is_err() && monitor.sent() == 6;
    if !outcome {
        return Err(format!("expected 3 jobs and 6 check-ins delivered: {monitor:?}").into());
    }
    eprintln!("cron_jobs: 3 jobs (ok, error, panic), 6 check-ins delivered");
    Ok(())
}
