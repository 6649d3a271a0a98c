//! # datacamp-db (being written)
