//! TODO(engine): crawler
