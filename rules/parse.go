package rules

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones on machines without a zoneinfo database

	"github.com/whenthen/whenthen/crm"
	"go.yaml.in/yaml/v3"
)

var (
	idRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	workspaceRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	atRE        = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
)

// MaxIDLen is the longest automation id.
const MaxIDLen = 128

// parsed is an automation as written, before its expressions compile:
// everything the file format alone decides is checked and settled here
// (keys, values, the support matrix, fire modes); compile.go adds what
// needs the compiled expressions and the whole set.
type parsed struct {
	a      *Automation
	idNode *yaml.Node
	ifSrc  *exprSrc
	whoSrc *exprSrc
	// fireN is the fire value as written, nil when absent; fire is its
	// value when valid, 0 otherwise (the default is settled at compile:
	// it depends on whether the condition reads before or changed).
	fireN     *yaml.Node
	fire      Fire
	thenN     *yaml.Node
	briefN    *yaml.Node
	cooldownN *yaml.Node
}

// exprSrc is a CEL expression with where it stands in its file.
type exprSrc struct {
	text string
	node *yaml.Node
}

// fileParser turns one file's YAML into automations, collecting errors.
type fileParser struct {
	name   string
	lines  []string
	schema *crm.Schema
	errs   ErrorList
	out    []*parsed
}

func (p *fileParser) errAt(n *yaml.Node, id string, format string, args ...any) {
	e := &Error{File: p.name, AutomationID: id, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

// mapping calls fn for each key of a mapping node, reporting keys that are
// not in allowed and keys given twice.
func (p *fileParser) mapping(n *yaml.Node, id, what string, allowed []string, fn func(k string, key, val *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		p.errAt(n, id, "%s must be a mapping", what)
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errAt(k, id, "%s: key %q given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		ok := false
		for _, a := range allowed {
			if a == k.Value {
				ok = true
				break
			}
		}
		if !ok {
			p.errAt(k, id, "%s: unknown key %q (want one of: %s)", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		fn(k.Value, k, v)
	}
	return true
}

func (p *fileParser) str(n *yaml.Node, id, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errAt(n, id, "%s must be a string", what)
		return "", false
	}
	return n.Value, true
}

func (p *fileParser) boolean(n *yaml.Node, id, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	p.errAt(n, id, "%s must be true or false", what)
	return false, false
}

func (p *fileParser) duration(n *yaml.Node, id, what string, allowNegative bool) (time.Duration, bool) {
	s, ok := p.str(n, id, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errAt(n, id, "%s: invalid duration %q (use Go syntax such as 720h or 90m)", what, s)
		return 0, false
	}
	if d < 0 && !allowNegative {
		p.errAt(n, id, "%s must not be negative", what)
		return 0, false
	}
	return d, true
}

// parseFile reads a file's root node (nil for an empty file).
func (p *fileParser) parseFile(root *yaml.Node) {
	if root == nil {
		return // an empty file holds no automations
	}
	workspace := ""
	var autos *yaml.Node
	p.mapping(root, "", "file", []string{"workspace", "automations"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "workspace":
			if s, ok := p.str(v, "", "workspace"); ok {
				if !workspaceRE.MatchString(s) {
					p.errAt(v, "", "invalid workspace %q (want 1 to 128 of [A-Za-z0-9._-])", s)
				}
				workspace = s
			}
		case "automations":
			autos = v
		}
	})
	if autos == nil {
		if root.Kind == yaml.MappingNode {
			p.errAt(root, "", "file has no \"automations\" list")
		}
		return
	}
	if autos.Kind != yaml.SequenceNode {
		if autos.Tag != "!!null" {
			p.errAt(autos, "", "automations must be a list")
		}
		return
	}
	for i, n := range autos.Content {
		if pa := p.parseAutomation(n, i, workspace); pa != nil {
			p.out = append(p.out, pa)
		}
	}
}

func (p *fileParser) parseAutomation(n *yaml.Node, index int, workspace string) *parsed {
	a := &Automation{Workspace: workspace, Enabled: true, Pos: Pos{File: p.name, Line: n.Line, Col: n.Column}}
	pa := &parsed{a: a}
	// Find the id first so that every error names it.
	id := fmt.Sprintf("#%d", index+1)
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode && n.Content[i+1].Value != "" {
				id = n.Content[i+1].Value
				pa.idNode = n.Content[i+1]
				break
			}
		}
	}
	var when *yaml.Node
	ok := p.mapping(n, id, "automation", []string{"id", "name", "description", "enabled", "when", "if", "fire", "then", "cooldown"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "id":
			if s, ok := p.str(v, id, "id"); ok {
				switch {
				case !idRE.MatchString(s):
					p.errAt(v, id, "invalid id %q (want [a-z0-9][a-z0-9._-]*)", s)
				case len(s) > MaxIDLen:
					p.errAt(v, id, "id is longer than %d characters", MaxIDLen)
				default:
					a.ID = s
				}
			}
		case "name":
			if s, ok := p.str(v, id, "name"); ok {
				a.Name = s
			}
		case "description":
			p.str(v, id, "description")
		case "enabled":
			if b, ok := p.boolean(v, id, "enabled"); ok {
				a.Enabled = b
			}
		case "when":
			when = v
		case "if":
			if s, ok := p.str(v, id, "if"); ok {
				if strings.TrimSpace(s) == "" {
					p.errAt(v, id, "if is empty (leave it out to run on every trigger)")
				} else {
					pa.ifSrc = &exprSrc{text: s, node: v}
				}
			}
		case "fire":
			pa.fireN = v
		case "then":
			pa.thenN = v
		case "cooldown":
			pa.cooldownN = v
			if d, ok := p.duration(v, id, "cooldown", false); ok {
				a.Cooldown = d
			}
		}
	})
	if !ok {
		return nil
	}
	if pa.idNode == nil {
		p.errAt(n, id, "id is required")
	}
	if when == nil {
		p.errAt(n, id, "when is required")
	} else {
		p.parseWhen(when, id, a)
	}
	if pa.thenN == nil {
		p.errAt(n, id, "then is required")
	} else {
		p.parseThen(pa, id)
	}
	p.parseFire(pa, id)
	p.checkMatrix(pa, id)
	return pa
}

// parseFire reads fire: a valid mode, given only with an if, and on_enter
// only on a record trigger.
func (p *fileParser) parseFire(pa *parsed, id string) {
	if pa.fireN == nil {
		return
	}
	s, ok := p.str(pa.fireN, id, "fire")
	if !ok {
		return
	}
	switch s {
	case "on_enter":
		pa.fire = FireOnEnter
	case "every_time":
		pa.fire = FireEveryTime
	default:
		p.errAt(pa.fireN, id, "unknown fire mode %q (want on_enter or every_time)", s)
		return
	}
	t := pa.a.Trigger
	switch {
	case pa.ifSrc == nil:
		p.errAt(pa.fireN, id, "fire applies only to automations with an if (without one the automation runs on every trigger)")
	case pa.fire == FireOnEnter && t.Kind != 0 && t.Kind != TriggerRecord:
		p.errAt(pa.fireN, id, "fire: on_enter applies only to record triggers (a %s trigger fires once per occurrence)", t.Kind)
	}
}

// checkMatrix enforces which trigger may take which action and setting
// (docs/rules.md, "Support matrix"), and settles the brief kind a record
// trigger implies.
func (p *fileParser) checkMatrix(pa *parsed, id string) {
	a := pa.a
	t := a.Trigger
	if t.Kind == 0 {
		return
	}
	if a.Brief != nil {
		switch {
		case t.Kind == TriggerCall:
			if a.Brief.Kind == "" {
				p.errAt(pa.briefN, id, "then.brief.kind is required for a call trigger (account or opportunity: the call's record the brief is about)")
			}
		case t.Kind != TriggerRecord && t.Kind != TriggerSchedule:
			p.errAt(pa.briefN, id, "a %s trigger cannot send a brief (briefs need a record or schedule trigger on an account, opportunity or contact, or a call; use a flow)", t.Kind)
		case t.Object == crm.ObjLead:
			p.errAt(pa.briefN, id, "a lead %s trigger cannot send a brief (use a flow)", t.Kind)
		case a.Brief.Kind == "":
			switch t.Object {
			case crm.ObjAccount, crm.ObjOpportunity:
				a.Brief.Kind = t.Object
			case crm.ObjContact:
				p.errAt(pa.briefN, id, "then.brief.kind is required for a contact %s trigger (account or opportunity)", t.Kind)
			}
		}
	}
	if a.Cooldown > 0 && (t.Kind == TriggerTracker || t.Kind == TriggerCall) {
		p.errAt(pa.cooldownN, id, "cooldown applies per record; a %s trigger has none (use then.flow.reenroll_after)", t.Kind)
	}
	if a.Flow != nil && pa.whoSrc == nil && t.Object != crm.ObjLead && t.Object != crm.ObjContact {
		p.errAt(pa.thenN, id, "then.flow.who is required unless the trigger's record is a lead or contact (the person is then the record itself)")
	}
}

func (p *fileParser) object(n *yaml.Node, id, what string) (string, bool) {
	s, ok := p.str(n, id, what)
	if !ok {
		return "", false
	}
	if _, known := p.schema.Object(s); !known {
		p.errAt(n, id, "%s: unknown object %q (want one of: %s)", what, s, strings.Join(crm.CRMObjects, ", "))
		return "", false
	}
	return s, true
}

func (p *fileParser) parseWhen(n *yaml.Node, id string, a *Automation) {
	t := &a.Trigger
	var kinds []string
	var onNode *yaml.Node
	p.mapping(n, id, "when", []string{"record", "on", "date", "tracker", "schedule", "call"}, func(k string, key, v *yaml.Node) {
		if k != "on" {
			kinds = append(kinds, k)
		}
		switch k {
		case "record":
			t.Kind = TriggerRecord
			if o, ok := p.object(v, id, "when.record"); ok {
				t.Object = o
			}
		case "on":
			onNode = v
		case "tracker":
			t.Kind = TriggerTracker
			p.parseTracker(v, id, t)
		case "schedule":
			t.Kind = TriggerSchedule
			p.parseSchedule(v, id, t)
		case "date":
			t.Kind = TriggerDate
			p.parseDate(v, id, t)
		case "call":
			t.Kind = TriggerCall
			if s, ok := p.str(v, id, "when.call"); ok && s != "processed" {
				p.errAt(v, id, "when.call: unknown call event %q (want processed)", s)
			}
		}
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	switch {
	case len(kinds) == 0:
		p.errAt(n, id, "when needs one trigger: record, date, tracker, schedule or call")
		t.Kind = 0
	case len(kinds) > 1:
		p.errAt(n, id, "when has more than one trigger (%s); an automation has exactly one", strings.Join(kinds, ", "))
		t.Kind = 0
	}
	if onNode != nil {
		if t.Kind != TriggerRecord {
			p.errAt(onNode, id, "when.on applies only to record triggers")
		} else {
			p.parseOn(onNode, id, t)
		}
	} else if t.Kind == TriggerRecord {
		t.OnCreate, t.OnUpdate = true, true
	}
}

// parseSchedule reads a schedule trigger: named, fired by schedule.fired
// events ({name, record}), or built in ({cron, timezone, record}).
func (p *fileParser) parseSchedule(v *yaml.Node, id string, t *Trigger) {
	var cronN, tzN *yaml.Node
	loc := time.UTC
	p.mapping(v, id, "when.schedule", []string{"name", "cron", "timezone", "record"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "name":
			if s, ok := p.str(v, id, "when.schedule.name"); ok && s != "" {
				t.Schedule = s
			}
		case "cron":
			cronN = v
		case "timezone":
			tzN = v
			s, ok := p.str(v, id, "when.schedule.timezone")
			if !ok {
				return
			}
			l, err := time.LoadLocation(s)
			if err != nil || s == "" || s == "Local" {
				p.errAt(v, id, "when.schedule.timezone: unknown time zone %q (want an IANA name such as America/New_York)", s)
				return
			}
			loc = l
		case "record":
			if o, ok := p.object(v, id, "when.schedule.record"); ok {
				t.Object = o
			}
		}
	})
	if v.Kind != yaml.MappingNode {
		return
	}
	switch {
	case cronN != nil && hasKey(v, "name"):
		p.errAt(v, id, "when.schedule has both name and cron: a schedule is fired by schedule.fired events of its name, or runs by itself on its cron, not both")
	case cronN != nil:
		if s, ok := p.str(cronN, id, "when.schedule.cron"); ok {
			if c, err := ParseCron(s, loc); err != nil {
				p.errAt(cronN, id, "when.schedule.cron: %v", err)
			} else {
				t.Cron = c
			}
		}
	case t.Schedule == "" && !hasKey(v, "name"):
		p.errAt(v, id, "when.schedule needs a name (fired by schedule.fired events) or a cron (runs by itself)")
	case t.Schedule == "":
		p.errAt(v, id, "when.schedule.name is empty")
	}
	if tzN != nil && cronN == nil {
		p.errAt(tzN, id, "when.schedule.timezone applies only with cron")
	}
	if t.Object == "" && !hasKey(v, "record") {
		p.errAt(v, id, "when.schedule.record is required")
	}
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (p *fileParser) parseOn(n *yaml.Node, id string, t *Trigger) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			p.errAt(n, id, "when.on is empty (want created, updated or both)")
		}
	}
	for _, it := range items {
		s, ok := p.str(it, id, "when.on")
		if !ok {
			continue
		}
		switch s {
		case "created":
			t.OnCreate = true
		case "updated":
			t.OnUpdate = true
		default:
			p.errAt(it, id, "when.on: unknown event %q (want created or updated)", s)
		}
	}
}

func (p *fileParser) parseTracker(v *yaml.Node, id string, t *Trigger) {
	if v.Kind == yaml.ScalarNode {
		if s, ok := p.str(v, id, "when.tracker"); ok {
			if s == "" {
				p.errAt(v, id, "when.tracker: name is empty")
			}
			t.Tracker = s
		}
		return
	}
	p.mapping(v, id, "when.tracker", []string{"name", "min_confidence"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "name":
			if s, ok := p.str(v, id, "when.tracker.name"); ok {
				t.Tracker = s
			}
		case "min_confidence":
			f, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || err != nil || f < 0 || f > 1 {
				p.errAt(v, id, "when.tracker.min_confidence must be a number from 0 to 1")
				return
			}
			t.MinConfidence = f
		}
	})
	if v.Kind == yaml.MappingNode && t.Tracker == "" {
		p.errAt(v, id, "when.tracker.name is required")
	}
}

func (p *fileParser) parseDate(v *yaml.Node, id string, t *Trigger) {
	d := &DateTrigger{Location: time.UTC}
	var fieldNode *yaml.Node
	var tzSet bool
	d.CatchUp = DefaultCatchUp
	p.mapping(v, id, "when.date", []string{"record", "field", "offset", "at", "timezone", "catch_up"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "record":
			if o, ok := p.object(v, id, "when.date.record"); ok {
				t.Object = o
			}
		case "field":
			fieldNode = v
		case "offset":
			if off, ok := p.duration(v, id, "when.date.offset", true); ok {
				d.Offset = off
			}
		case "catch_up":
			if v.Kind == yaml.ScalarNode && v.Value == "0" {
				d.CatchUp = 0
			} else if c, ok := p.duration(v, id, "when.date.catch_up", false); ok {
				d.CatchUp = c
			}
		case "at":
			s, ok := p.str(v, id, "when.date.at")
			if !ok {
				return
			}
			m := atRE.FindStringSubmatch(s)
			if m == nil {
				p.errAt(v, id, "when.date.at: invalid time of day %q (want HH:MM, 00:00 to 23:59)", s)
				return
			}
			d.HasAt = true
			d.AtHour, _ = strconv.Atoi(m[1])
			d.AtMinute, _ = strconv.Atoi(m[2])
		case "timezone":
			s, ok := p.str(v, id, "when.date.timezone")
			if !ok {
				return
			}
			loc, err := time.LoadLocation(s)
			if err != nil || s == "" || s == "Local" {
				p.errAt(v, id, "when.date.timezone: unknown time zone %q (want an IANA name such as America/New_York)", s)
				return
			}
			d.Location = loc
			tzSet = true
		}
	})
	if v.Kind != yaml.MappingNode {
		return
	}
	if !hasKey(v, "record") {
		p.errAt(v, id, "when.date.record is required")
	}
	if fieldNode == nil {
		p.errAt(v, id, "when.date.field is required")
	} else if s, ok := p.str(fieldNode, id, "when.date.field"); ok && t.Object != "" {
		f, found := stdObject(p.schema, t.Object).Field(s)
		switch {
		case !found:
			p.errAt(fieldNode, id, "when.date.field: %s has no field %q", t.Object, s)
		case f.Kind != crm.KindTimestamp:
			p.errAt(fieldNode, id, "when.date.field: %s.%s is a %s, not a timestamp", t.Object, s, f.Kind)
		default:
			d.Field = f
		}
	}
	if tzSet && !d.HasAt {
		p.errAt(v, id, "when.date.timezone applies only with at")
	}
	t.Date = d
}

func (p *fileParser) parseThen(pa *parsed, id string) {
	a := pa.a
	n := pa.thenN
	var kinds []string
	p.mapping(n, id, "then", []string{"brief", "flow"}, func(k string, key, v *yaml.Node) {
		kinds = append(kinds, k)
		switch k {
		case "brief":
			pa.briefN = key
			a.Brief = &BriefAction{}
			p.parseBrief(v, id, a.Brief)
		case "flow":
			a.Flow = &FlowAction{}
			p.parseFlow(v, id, pa)
		}
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	switch {
	case len(kinds) == 0:
		p.errAt(n, id, "then needs one action: brief or flow")
	case len(kinds) > 1:
		p.errAt(n, id, "then has more than one action (brief, flow); an automation has exactly one")
		a.Brief, a.Flow = nil, nil
	}
}

func (p *fileParser) parseBrief(v *yaml.Node, id string, b *BriefAction) {
	var recips *yaml.Node
	p.mapping(v, id, "then.brief", []string{"kind", "recipients"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "kind":
			if s, ok := p.str(v, id, "then.brief.kind"); ok {
				if s != crm.ObjAccount && s != crm.ObjOpportunity {
					p.errAt(v, id, "then.brief.kind: unknown kind %q (want account or opportunity)", s)
					return
				}
				b.Kind = s
			}
		case "recipients":
			recips = v
		}
	})
	if recips == nil {
		b.Recipients = []Recipient{{Kind: RecipientOwner}}
		return
	}
	if recips.Kind != yaml.SequenceNode || len(recips.Content) == 0 {
		p.errAt(recips, id, "then.brief.recipients must be a non-empty list")
		return
	}
	seen := map[Recipient]bool{}
	for _, r := range recips.Content {
		s, ok := p.str(r, id, "then.brief.recipients")
		if !ok {
			continue
		}
		var rc Recipient
		switch {
		case s == "owner":
			rc = Recipient{Kind: RecipientOwner}
		case strings.HasPrefix(s, "user:") && len(s) > len("user:"):
			rc = Recipient{Kind: RecipientUser, Value: s[len("user:"):]}
		case strings.HasPrefix(s, "email:"):
			addr := s[len("email:"):]
			if parsed, err := mail.ParseAddress(addr); err != nil || parsed.Address != addr {
				p.errAt(r, id, "then.brief.recipients: invalid email address %q", addr)
				continue
			}
			rc = Recipient{Kind: RecipientEmail, Value: addr}
		default:
			p.errAt(r, id, "then.brief.recipients: invalid recipient %q (want owner, user:ID or email:ADDRESS)", s)
			continue
		}
		if seen[rc] {
			p.errAt(r, id, "then.brief.recipients: %q is listed twice", s)
			continue
		}
		seen[rc] = true
		b.Recipients = append(b.Recipients, rc)
	}
}

func (p *fileParser) parseFlow(v *yaml.Node, id string, pa *parsed) {
	f := pa.a.Flow
	p.mapping(v, id, "then.flow", []string{"id", "who", "reenroll_after"}, func(k string, key, v *yaml.Node) {
		switch k {
		case "id":
			if s, ok := p.str(v, id, "then.flow.id"); ok {
				if s == "" {
					p.errAt(v, id, "then.flow.id is empty")
					return
				}
				f.ID = s
			}
		case "who":
			if s, ok := p.str(v, id, "then.flow.who"); ok {
				if strings.TrimSpace(s) == "" {
					p.errAt(v, id, "then.flow.who is empty")
					return
				}
				pa.whoSrc = &exprSrc{text: s, node: v}
			}
		case "reenroll_after":
			if d, ok := p.duration(v, id, "then.flow.reenroll_after", false); ok {
				f.ReenrollAfter = d
			}
		}
	})
	if v.Kind == yaml.MappingNode && !hasKey(v, "id") {
		p.errAt(v, id, "then.flow.id is required")
	}
}

// position maps a position within an expression (1-based line, 0-based
// column, in runes) to its position in the file.
func (p *fileParser) position(src *exprSrc, line, col int) (int, int) {
	n := src.node
	if line <= 0 {
		return n.Line, n.Column
	}
	// Rune offset of the position within the expression.
	exprLines := strings.Split(src.text, "\n")
	off := 0
	for i := 0; i < line-1 && i < len(exprLines); i++ {
		off += len([]rune(exprLines[i])) + 1
	}
	off += col
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// Content starts on the line after the indicator.
		if line-1 < len(exprLines) && n.Style == yaml.LiteralStyle {
			// Every content line shares the indentation of the first.
			return n.Line + line, p.indent(n.Line+1) + col + 1
		}
		return p.walk(n.Line+1, -1, off)
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return p.walk(n.Line, n.Column+1, off)
	default:
		return p.walk(n.Line, n.Column, off)
	}
}

// indent is the number of leading spaces of a file line (1-based).
func (p *fileParser) indent(line int) int {
	if line-1 >= len(p.lines) || line < 1 {
		return 0
	}
	l := p.lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " \t"))
}

// walk maps a rune offset in a folded scalar to a file position: the scalar
// starts at (line, col) (col -1: at the line's indentation), and each
// following source line continues it after one joining character.
func (p *fileParser) walk(line, col, off int) (int, int) {
	for line-1 < len(p.lines) {
		l := []rune(p.lines[line-1])
		start := col - 1
		if col < 0 {
			start = p.indent(line)
		}
		if start < 0 {
			start = 0
		}
		rest := len(l) - start
		if off <= rest || line == len(p.lines) {
			return line, start + off + 1
		}
		off -= rest + 1
		line++
		col = -1
	}
	return line, 1
}
