package brief

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/syncx"
)

// Defaults of AIOptions.
const (
	DefaultAITimeout   = 30 * time.Second
	DefaultAIAttempts  = 3
	DefaultAIMaxTokens = 600
	maxAIResponseBytes = 1 << 20
)

// AIOptions configure an [AI] endpoint.
type AIOptions struct {
	// BaseURL is the API's base, e.g. https://api.openai.com/v1; requests
	// go to BaseURL + "/chat/completions". Required.
	BaseURL string
	// Model is sent as "model". Required.
	Model string
	// APIKey is sent as "Authorization: Bearer KEY" when set.
	APIKey string
	// Timeout bounds each request; default 30s. Attempts is how many
	// requests one brief may make (on timeouts, connection errors, 429
	// and 5xx, honouring Retry-After); default 3. MaxTokens is sent as
	// max_tokens; default 600.
	Timeout   time.Duration
	Attempts  int
	MaxTokens int
	// Client sends the requests; default a webhook.Client with the
	// system roots.
	Client *webhook.Client
}

// AI is an OpenAI-compatible chat completions endpoint.
type AI struct {
	o   AIOptions
	url string
}

// NewAI returns the endpoint of o.
func NewAI(o AIOptions) (*AI, error) {
	if o.BaseURL == "" || o.Model == "" {
		return nil, errors.New("brief: the AI endpoint needs a base URL and a model")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultAITimeout
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAIAttempts
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultAIMaxTokens
	}
	if o.Client == nil {
		o.Client = webhook.NewClient(webhook.ClientOptions{MaxResponseBytes: maxAIResponseBytes, ResponseHeaderTimeout: o.Timeout})
	}
	return &AI{o: o, url: strings.TrimRight(o.BaseURL, "/") + "/chat/completions"}, nil
}

// Timeout is the most one Complete call can take: every attempt at its
// timeout, and the waits between them.
func (a *AI) Timeout() time.Duration {
	return time.Duration(a.o.Attempts)*a.o.Timeout + time.Duration(a.o.Attempts)*4*time.Second
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	MaxTokens   int           `json:"max_tokens"`
	Temperature float64       `json:"temperature"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// Complete sends the two messages and returns the first choice's text,
// retrying what may succeed later. Errors never quote the response body or
// the key.
func (a *AI) Complete(ctx context.Context, system, user string) (string, error) {
	body, err := json.Marshal(chatRequest{Model: a.o.Model, MaxTokens: a.o.MaxTokens, Temperature: 0.2,
		Messages: []chatMessage{{Role: "system", Content: system}, {Role: "user", Content: user}}})
	if err != nil {
		return "", err
	}
	backoff := 500 * time.Millisecond
	var last error
	for attempt := 1; attempt <= a.o.Attempts; attempt++ {
		req, err := http.NewRequest(http.MethodPost, a.url, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		if a.o.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+a.o.APIKey)
		}
		actx, cancel := context.WithTimeout(ctx, a.o.Timeout)
		r := a.o.Client.Do(actx, req)
		cancel()
		if r.OK() {
			var res chatResponse
			if err := json.Unmarshal(r.Body, &res); err != nil || len(res.Choices) == 0 {
				return "", errors.New("the answer is not a chat completion")
			}
			text := strings.TrimSpace(res.Choices[0].Message.Content)
			if text == "" {
				return "", errors.New("the answer is empty")
			}
			return text, nil
		}
		last = r.Err
		if !r.Retryable || attempt == a.o.Attempts || ctx.Err() != nil {
			break
		}
		wait := syncx.Jitter(backoff)
		if r.RetryAfter > wait {
			wait = min(r.RetryAfter, 4*time.Second)
		}
		if !syncx.Sleep(ctx, wait) {
			return "", ctx.Err()
		}
		backoff *= 2
	}
	return "", fmt.Errorf("%w", last)
}
