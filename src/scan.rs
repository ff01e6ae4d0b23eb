//! The operator scan of the data directory (filled in by the scan work).
