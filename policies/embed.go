// Package policies holds the example policy files (and the small lists they use);
// default.yaml is embedded in the binary as the policy `portcullis run` uses when no
// --config is given. A test loads every file here.
package policies

import _ "embed"

// Default is the embedded default policy: the bytes of default.yaml.
//
//go:embed default.yaml
var Default []byte
