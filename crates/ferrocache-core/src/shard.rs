//! Placeholder: the sharded store lands with the engine work.
use crate::store::*;
use crate::{Config, ConfigError, Stats, StoreError};

pub(crate) struct Shards {
    config: Config,
}

impl Shards {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Shards { config })
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn now(&self) -> u32 {
        self.config.clock.now()
    }
    pub fn get<R>(&self, _key: &[u8], _o: &GetOptions, _f: impl FnOnce(&ItemView<'_>) -> R) -> Option<R> {
        todo!()
    }
    pub fn store(&self, _r: &StoreRequest<'_>) -> Result<StoreOutcome, StoreError> {
        todo!()
    }
    pub fn delete(&self, _r: &DeleteRequest<'_>) -> DeleteStatus {
        todo!()
    }
    pub fn arith(&self, _r: &ArithRequest<'_>) -> Result<ArithStatus, StoreError> {
        todo!()
    }
    pub fn touch(&self, _k: &[u8], _e: i64) -> bool {
        todo!()
    }
    pub fn flush_all(&self, _d: i64) {
        todo!()
    }
    pub fn stats(&self) -> Stats {
        todo!()
    }
    pub fn reset_stats(&self) {
        todo!()
    }
    pub fn shard_count(&self) -> usize {
        self.config.shards
    }
    pub fn visit_shard(&self, _s: usize, _f: impl FnMut(&ItemView<'_>)) {
        todo!()
    }
    pub fn maintain(&self) {
        todo!()
    }
}
