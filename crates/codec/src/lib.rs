//! # datacamp-codec (being written)
