package main

import (
	"flag"
	"fmt"

	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/engine"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/service"
)

// offlineDecoder is how eval, explain and backtest choose their decoder,
// as `whenthen run` does: --decoder, and the decoder section of a run
// config file (--decoder-config), so that they read what the service
// reads from the same file.
type offlineDecoder struct {
	kind, config string
}

func (d *offlineDecoder) flags(fs *flag.FlagSet) {
	fs.StringVar(&d.kind, "decoder", "", "input `DECODER`: envelope (the default) or debezium (tables from --decoder-config)")
	fs.StringVar(&d.config, "decoder-config", "", "read the decoder section (type, Debezium tables, size limits) of this whenthen run config `FILE`; its other settings are not used")
}

// build reads the config file, if any, and builds the decoder of
// schema's records under lim. An error is the user's: the caller exits
// with status 2.
func (d *offlineDecoder) build(schema *crm.Schema, lim crm.Limits, onUnknown func(*engine.Event, []crm.UnknownField)) (ingest.Decoder, error) {
	cfg := defaultRunConfig()
	if d.config != "" {
		if err := readConfigFile(d.config, cfg); err != nil {
			return nil, err
		}
	}
	if d.kind != "" {
		cfg.Decoder.Type = d.kind
	}
	o := cfg.Decoder.options(lim)
	if o.Kind == service.DecoderDebezium && len(o.Tables) == 0 {
		if d.config == "" {
			return nil, fmt.Errorf("--decoder debezium needs table mappings: give --decoder-config FILE, a whenthen run config file with decoder.tables (docs/events.md)")
		}
		return nil, fmt.Errorf("--decoder debezium: %s has no decoder.tables (docs/events.md)", d.config)
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	dec, err := service.NewDecoder(o, schema, lim, onUnknown)
	if err != nil {
		if d.config != "" {
			return nil, fmt.Errorf("decoder of %s: %w", d.config, err)
		}
		return nil, fmt.Errorf("decoder: %w", err)
	}
	return dec, nil
}
