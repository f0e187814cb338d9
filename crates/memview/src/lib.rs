//! Reading captured memory: a memory Image as a physical address space
//! ([`export::MemoryView`]), exported as raw, ELF core or LiME with holes left sparse, the
//! tree `pmem mount` serves, kernel type information from BTF, and Volatility 3 symbol tables
//! (ISF) built from it.
#![deny(missing_docs)]

pub mod btf;
pub mod error;
pub mod export;
pub mod globals;
pub mod isf;
pub mod mount;
pub mod outdir;
pub mod sparse;

pub use error::{Error, Result};
