//! TODO(engine): mover
