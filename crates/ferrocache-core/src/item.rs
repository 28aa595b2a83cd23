//! TODO(engine): item
