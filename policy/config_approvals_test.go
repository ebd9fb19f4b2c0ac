package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestApprovalsWebhookConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantErr // none: loads
		hook *Webhook
	}{
		{name: "no webhook", yaml: "approvals: { ttl: 10m }\n"},
		{name: "defaults", yaml: "approvals:\n  webhook: { url: \"https://hooks.slack.com/services/T/B/X\" }\n",
			hook: &Webhook{URL: "https://hooks.slack.com/services/T/B/X", Timeout: Duration(5 * time.Second), Retries: 3}},
		{name: "all set", yaml: "approvals:\n  webhook:\n    url: http://127.0.0.1:9/hook\n    timeout: 2s\n    retries: 0\n",
			hook: &Webhook{URL: "http://127.0.0.1:9/hook", Timeout: Duration(2 * time.Second), Retries: 0}},
		{name: "plain http elsewhere", yaml: "approvals:\n  webhook: { url: \"http://hooks.example.com/x?token=SECRET\" }\n",
			want: []wantErr{{4, "approvals.webhook.url", "want an https URL"}}},
		{name: "not a URL", yaml: "approvals:\n  webhook:\n    url: \"hooks.example.com/x\"\n",
			want: []wantErr{{5, "approvals.webhook.url", "want an https URL"}}},
		{name: "missing url", yaml: "approvals:\n  webhook: { timeout: 1s }\n",
			want: []wantErr{{4, "approvals.webhook.url", "required"}}},
		{name: "bad timeout and retries", yaml: "approvals:\n  webhook:\n    url: https://h.example.com/x\n    timeout: 0s\n    retries: 11\n",
			want: []wantErr{{6, "approvals.webhook.timeout", "longer than 0s"}, {7, "approvals.webhook.retries", "0 to 10"}}},
		{name: "unknown key", yaml: "approvals:\n  webhook: { url: \"https://h.example.com/x\", bogus: x }\n",
			want: []wantErr{{4, "approvals.webhook.bogus", "unknown key"}}},
		{name: "not a mapping", yaml: "approvals:\n  webhook: https://h.example.com/x\n",
			want: []wantErr{{4, "approvals.webhook", "want a mapping"}}},
		{name: "url_file, resolved against the config's directory", yaml: "approvals:\n  webhook: { url_file: hook.url }\n",
			hook: &Webhook{URLFile: "/etc/bastion/hook.url", Timeout: Duration(5 * time.Second), Retries: 3}},
		{name: "url_env", yaml: "approvals:\n  webhook: { url_env: BASTION_HOOK }\n",
			hook: &Webhook{URLEnv: "BASTION_HOOK", Timeout: Duration(5 * time.Second), Retries: 3}},
		{name: "url and url_file", yaml: "approvals:\n  webhook: { url: \"https://h.example.com/x\", url_file: f }\n",
			want: []wantErr{{4, "approvals.webhook.url", "one of url, url_file and url_env"}}},
		{name: "zero window", yaml: "approvals: { window: 0s }\n",
			want: []wantErr{{3, "approvals.window", "longer than 0s"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.yaml), "bastion.yaml", "/etc/bastion")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if (c.Approvals.Webhook == nil) != (tt.hook == nil) || tt.hook != nil && *c.Approvals.Webhook != *tt.hook {
					t.Errorf("webhook %+v, want %+v", c.Approvals.Webhook, tt.hook)
				}
				return
			}
			got := Errors(err)
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(e *ConfigError) bool {
					return e.Line == w.line && e.Key == w.key && strings.Contains(e.Msg, w.msg)
				}) {
					t.Errorf("missing %v in\n%v", w, err)
				}
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error echoes the webhook URL's token: %v", err)
			}
		})
	}
	if d := Defaults().Approvals.Window.Std(); d != time.Hour {
		t.Errorf("default approvals.window %v, want 1h", d)
	}
}

func TestWebhookResolveURL(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.url")
	if err := os.WriteFile(good, []byte("https://hooks.example.com/services/T0KEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.url")
	if err := os.WriteFile(bad, []byte("ftp://hooks.example.com/T0KEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BASTION_TEST_HOOK", "http://127.0.0.1:9/hook")
	for _, tt := range []struct {
		name    string
		w       Webhook
		want    string
		wantErr string
	}{
		{"inline", Webhook{URL: "https://h.example.com/x"}, "https://h.example.com/x", ""},
		{"file, trimmed", Webhook{URLFile: good}, "https://hooks.example.com/services/T0KEN", ""},
		{"env", Webhook{URLEnv: "BASTION_TEST_HOOK"}, "http://127.0.0.1:9/hook", ""},
		{"missing file", Webhook{URLFile: filepath.Join(dir, "none")}, "", "url_file"},
		{"unset env", Webhook{URLEnv: "BASTION_TEST_UNSET_HOOK"}, "", "not set"},
		{"file with a bad URL", Webhook{URLFile: bad}, "", "want an https URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.w.ResolveURL()
			switch {
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Errorf("ResolveURL = %q, %v; want %q", got, err, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ResolveURL error %v; want one mentioning %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "T0KEN"):
				t.Errorf("the error echoes the URL: %v", err)
			}
		})
	}
}
