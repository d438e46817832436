//! Dockerfile parsing, pure code with no I/O: the syntax tree ([`Dockerfile`], [`Instruction`],
//! [`Args`]), the parser that builds it ([`parse`]) and shell-word expansion ([`expand`]).
//!
//! The parser follows BuildKit's (`frontend/dockerfile/parser`): what BuildKit's parser accepts
//! parses here, with arguments kept as written, and what it rejects fails here with a line number.
//! Deciding what hoist can build — RUN, unknown instructions — is the build planner's job, so those
//! parse. Expansion follows BuildKit's `frontend/dockerfile/shell` lexer and runs at build time
//! against the build's variables.

mod args;
mod ast;
mod directives;
mod dump;
pub mod expand;
mod heredoc;
mod parser;

#[cfg(test)]
mod corpus;

pub use ast::{Args, Directive, Dockerfile, Flag, Heredoc, Instruction, KeyValue, ParseError, ParseErrorKind, Warning};
pub use expand::{expand_word, expand_words, ExpandError, ExpandErrorKind, Lookup};
pub use parser::parse;
