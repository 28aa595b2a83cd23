//! Errors the engine returns; their `Display` is memcached's wording where one exists.

use std::fmt;

/// A setting that cannot be honoured; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Why a write could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Key longer than 250 bytes or containing control characters/spaces is the codec's
    /// job; the engine only rejects empty or over-long keys.
    BadKey,
    /// Item (header + key + value) larger than the item size limit.
    TooLarge,
    /// No memory could be found: eviction disabled (`-M`) or nothing evictable.
    OutOfMemory,
    /// incr/decr on a value that is not a decimal number.
    NonNumeric,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::BadKey => "bad key",
            StoreError::TooLarge => "object too large for cache",
            StoreError::OutOfMemory => "out of memory storing object",
            StoreError::NonNumeric => "cannot increment or decrement non-numeric value",
        })
    }
}

impl std::error::Error for StoreError {}
