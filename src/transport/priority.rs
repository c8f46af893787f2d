//! [`CpuPriority`]: how the transport threads share a busy CPU with the threads serving
//! requests.

/// The CPU priority of a transport's background thread, which finishes, serializes, compresses
/// and sends events. It only matters when the CPU is saturated: with CPU to spare, the thread
/// delivers at full speed at any priority. Under saturation Linux's scheduler shares a CPU by
/// weight (nice 0: 1024, nice 10: 110, nice 19: 15), so the priority caps the share of a busy
/// core the transport can take from requests, and so how much of an error storm it delivers.
///
/// Measured on a saturated core (README, "Real HTTP and error storms"): at
/// [`Reduced`](Self::Reduced) a server capturing an error on 1 % of its requests delivers all
/// of them for a few per cent of its throughput, and a storm on every request costs it at most
/// about a tenth; [`Lowest`](Self::Lowest) keeps nearly all throughput in any storm but drops
/// a third of the 1 % case's errors; [`Normal`](Self::Normal) delivers the most and halves the
/// throughput of a 100 % storm.
///
/// ```
/// use isoscope::transport::CpuPriority;
/// let transport = isoscope::HttpTransport::builder("http://key@127.0.0.1:9/1")?.cpu_priority(CpuPriority::Normal).build()?;
/// # drop(transport);
/// # Ok::<(), isoscope::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CpuPriority {
    /// The threads' default (nice 0): competes with requests on equal terms.
    Normal,
    /// Nice 10 (the default): under saturation, about a tenth of a core shared with one busy
    /// thread — room to deliver ~1,000 events a second — and never more.
    #[default]
    Reduced,
    /// Nice 19: about 1.5 % of a core shared with one busy thread; a storm's events are
    /// mostly dropped (and counted).
    Lowest,
}

impl CpuPriority {
    /// Sets the calling thread's priority. A platform that refuses leaves it as it was (an
    /// unprivileged thread can lower its priority, never raise it back).
    pub(crate) fn apply(self) {
        if self == Self::Normal {
            return;
        }
        crate::util::lower_thread_priority(self == Self::Lowest);
    }
}
