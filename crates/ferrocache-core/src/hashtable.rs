//! TODO(engine): hashtable
