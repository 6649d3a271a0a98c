//! EDN bridge (being written): parse tx-data, values and datoms from EDN
//! text; print them with `Display`.
