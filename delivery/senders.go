package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/delivery/email"
	"github.com/whenthen/whenthen/delivery/webhook"
)

// Outcome reasons of delivery beyond those of package actions (additive,
// docs/delivery.md): why an action failed.
const (
	// ReasonRejected: the destination refused it for good (a 4xx, an SMTP
	// 5xx, a redirect not followed).
	ReasonRejected = "rejected"
	// ReasonExpired: no attempt succeeded within max_age.
	ReasonExpired = "expired"
	// ReasonInvalid: the action cannot be delivered as it is (a flow
	// without a flow, a brief without recipients' list).
	ReasonInvalid = "invalid_action"
)

// Headers a webhook call carries besides Standard Webhooks'.
const (
	HeaderAttempt     = "whenthen-attempt"
	HeaderDestination = "whenthen-destination"
)

// webhookSender calls a Standard Webhooks endpoint.
type webhookSender struct {
	url     string
	secrets []webhook.Secret
	headers map[string]string
	client  *webhook.Client
}

// target is the URL as outcomes show it: without query or credentials.
func (s *webhookSender) target() string {
	u, err := url.Parse(s.url)
	if err != nil {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

func (s *webhookSender) deliver(ctx context.Context, a *attempt) result {
	body, fresh, err := a.webhookBody(ctx, a.dest.DryRun)
	if err != nil {
		return result{err: err, retryable: ctx.Err() == nil}
	}
	res := result{}
	if fresh {
		res.content = string(body)
	}
	if a.dest.DryRun {
		res.status = actions.StatusDryRun
		res.detail = fmt.Sprintf("would POST %d bytes (%s) to %s", len(body), a.act.Type, s.target())
		return res
	}
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		res.err = err
		return res
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderAttempt, strconv.Itoa(a.n))
	req.Header.Set(HeaderDestination, a.dest.Name)
	webhook.Sign(req.Header, s.secrets, a.act.ActionID, a.now, body)
	cctx, cancel := context.WithTimeout(ctx, a.dest.Timeout)
	r := s.client.Do(cctx, req)
	cancel()
	res.tried, res.httpStatus, res.retryAfter = true, r.Status, r.RetryAfter
	switch {
	case r.OK():
		res.status = actions.StatusDelivered
		res.detail = fmt.Sprintf("POST %s: HTTP %d", s.target(), r.Status)
	case r.Status == http.StatusConflict && a.act.Type == actions.TypeFlow:
		res.status, res.reason = actions.StatusDelivered, actions.ReasonAlreadyEnrolled
		res.detail = fmt.Sprintf("POST %s: HTTP 409, the person is already enrolled", s.target())
	default:
		res.err, res.retryable = r.Err, r.Retryable
	}
	return res
}

// emailSender sends briefs by SMTP.
type emailSender struct {
	smtp *email.Sender
	from string
	dir  email.Directory
}

func (s *emailSender) deliver(ctx context.Context, a *attempt) result {
	b, fresh, err := a.briefContent(ctx, a.dest.DryRun)
	if err != nil {
		return result{err: err, retryable: ctx.Err() == nil}
	}
	res := result{content: fresh}
	var to, shown, unknown []string
	for _, r := range b.Recipients {
		kind, id, _ := strings.Cut(r, ":")
		switch kind {
		case "email":
			to, shown = append(to, id), append(shown, r)
		case "user":
			if s.dir == nil {
				unknown = append(unknown, r)
				continue
			}
			addr, found, err := s.dir.Lookup(ctx, a.act.Workspace, id)
			if err != nil {
				res.err, res.retryable = err, true
				return res
			}
			if !found {
				unknown = append(unknown, r)
				continue
			}
			to, shown = append(to, addr), append(shown, r+" ("+addr+")")
		default:
			unknown = append(unknown, r)
		}
	}
	note := ""
	if len(unknown) > 0 {
		note = "; unknown, skipped: " + recipientList(unknown)
	}
	if b.Note != "" {
		note += "; " + b.Note
	}
	if len(to) == 0 {
		res.status, res.reason = actions.StatusSkipped, actions.ReasonNoRecipients
		res.detail = "no recipient left" + note
		return res
	}
	if a.dest.DryRun {
		res.status = actions.StatusDryRun
		res.detail = fmt.Sprintf("would send %q to %s%s", b.Subject, recipientList(shown), note)
		return res
	}
	cctx, cancel := context.WithTimeout(ctx, a.dest.Timeout)
	r := s.smtp.Send(cctx, email.Message{From: s.from, To: to, Subject: b.Subject, Text: b.Text,
		MessageID: a.act.ActionID + "." + a.dest.Name + "@whenthen", Date: a.act.FiredAt,
		Headers: map[string]string{"X-Whenthen-Action-Id": a.act.ActionID, "X-Whenthen-Workspace": a.act.Workspace,
			"X-Whenthen-Automation": a.act.AutomationID}})
	cancel()
	res.tried = true
	for addr, why := range r.Refused {
		note += fmt.Sprintf("; %s refused: %s", addr, why)
	}
	if r.Err != nil {
		res.err, res.retryable = r.Err, r.Retryable
		res.detail = strings.TrimPrefix(note, "; ")
		return res
	}
	res.status = actions.StatusDelivered
	res.detail = fmt.Sprintf("sent %q to %s%s", b.Subject, recipientList(shown), note)
	return res
}

// slackSender posts briefs to a Slack-compatible incoming webhook. Its
// URL is a secret: outcomes and errors never show it.
type slackSender struct {
	url    string
	client *webhook.Client
}

// slackEscape escapes what Slack's mrkdwn reads as markup (&, <, >), so
// that record values cannot mention a channel or make a link.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func (s *slackSender) deliver(ctx context.Context, a *attempt) result {
	b, fresh, err := a.briefContent(ctx, a.dest.DryRun)
	if err != nil {
		return result{err: err, retryable: ctx.Err() == nil}
	}
	res := result{content: fresh}
	text := "*" + slackEscape.Replace(b.Subject) + "*\n\n" + slackEscape.Replace(b.Text)
	if len(b.Recipients) > 0 {
		text += "\n\n_For: " + slackEscape.Replace(recipientList(b.Recipients)) + "_"
	}
	body, _ := json.Marshal(map[string]string{"text": text})
	if a.dest.DryRun {
		res.status = actions.StatusDryRun
		res.detail = fmt.Sprintf("would post %q to the Slack webhook", b.Subject)
		return res
	}
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		res.err = fmt.Errorf("the Slack webhook URL is invalid")
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	cctx, cancel := context.WithTimeout(ctx, a.dest.Timeout)
	r := s.client.Do(cctx, req)
	cancel()
	res.tried, res.httpStatus, res.retryAfter = true, r.Status, r.RetryAfter
	if r.OK() {
		res.status = actions.StatusDelivered
		res.detail = fmt.Sprintf("posted %q to the Slack webhook", b.Subject)
		if b.Note != "" {
			res.detail += "; " + b.Note
		}
		return res
	}
	res.err, res.retryable = r.Err, r.Retryable
	return res
}
