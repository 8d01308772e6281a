package authsvc

import "log/slog"

// Secret is a string that does not print: String, GoString, LogValue and
// MarshalText all give "***". Use Reveal where the value is really needed.
type Secret string

const redacted = "***"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) Reveal() string             { return string(s) }
