"""One function per GraphQL operation, each a short story of the contract's rules."""
