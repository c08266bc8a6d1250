use crate::util::engine;
