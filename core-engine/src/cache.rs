//! Managing the task output cache: what `tern cache list` and `tern cache evict` call.
//! (Looking entries up and storing them is the executor's part: `exec::cache`.)
use crate::engine::Engine;
use crate::error::EngineError;
use crate::store::{CacheEntry, Eviction};

impl Engine {
    /// Every cache entry, newest first.
    pub async fn cache_entries(&self) -> Result<Vec<CacheEntry>, EngineError> {
        Ok(self.state().cache_list().await?)
    }

    /// Evicts entries; returns the keys evicted (a key given but not found is simply absent).
    pub async fn evict_cache(&self, which: &Eviction) -> Result<Vec<String>, EngineError> {
        Ok(self.state().cache_evict(which).await?)
    }
}
