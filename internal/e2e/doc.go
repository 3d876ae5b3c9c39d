// Package e2e owns Portcullis's reliability and security suite: end-to-end tests
// that drive the engine exactly as the binary does (a policy file in a temporary
// folder, engine.New, Run, real listeners on loopback) and attack it the way the
// internet will — request smuggling and parser differentials sent as raw bytes, open
// proxy and SSRF attempts, slow and idle clients, failing origins and resolvers, and a
// soak with a goroutine and heap check. docs/guarantees.md lists what the suite checks.
// The package holds no code outside its tests.
package e2e
