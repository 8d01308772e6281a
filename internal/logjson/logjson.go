// Package logjson builds the JSON logger every command of the gateway uses:
// one JSON object per line, durations written as Go durations ("1.5s"), not
// as bare nanosecond integers that no reader can tell from other numbers.
package logjson

import (
	"io"
	"log/slog"
)

// New returns a JSON logger writing to w at level.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		},
	}))
}
