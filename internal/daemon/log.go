package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ValidateLog reports an unknown log format ("json", "text" or "") or
// level ("debug", "info", "warn", "error" or "").
func ValidateLog(format, level string) error {
	if _, err := parseLevel(level); err != nil {
		return err
	}
	switch format {
	case "", "json", "text":
		return nil
	}
	return fmt.Errorf("log format %q: want json or text", format)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// NewLogger returns a logger writing format ("json" or "text") records of
// level and above to w.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
