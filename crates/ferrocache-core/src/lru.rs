//! TODO(engine): lru
