//! TODO(engine): slab
