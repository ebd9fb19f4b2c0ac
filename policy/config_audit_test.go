package policy

import (
	"strings"
	"testing"
)

// auditHead is a minimal valid file; the cases append audit: and metrics:.
const auditHead = "listen: \":2222\"\ndata_dir: /var/lib/bastion\n"

func TestAuditSyslogAndMetricsConfig(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		wantErr string // "file:line: key ..." fragment; empty means valid
		check   func(t *testing.T, c *Config)
	}{
		{name: "syslog tcp with every key",
			yaml: "audit:\n  syslog: { network: tcp, address: \"siem.example.com:6514\", app_name: bastion-prod, facility: local4, queue: 100 }\nmetrics: { listen: \"127.0.0.1:9102\" }\n",
			check: func(t *testing.T, c *Config) {
				sl := c.Audit.Syslog
				if sl == nil || sl.Network != "tcp" || sl.Address != "siem.example.com:6514" || sl.AppName != "bastion-prod" ||
					sl.Facility != "local4" || sl.Queue != 100 || c.Metrics.Listen != "127.0.0.1:9102" || len(c.Warnings) != 0 {
					t.Fatalf("decoded %+v %+v warnings %v", sl, c.Metrics, c.Warnings)
				}
			}},
		{name: "no syslog, no metrics",
			yaml: "",
			check: func(t *testing.T, c *Config) {
				if c.Audit.Syslog != nil || c.Metrics.Listen != "" {
					t.Fatalf("defaults: %+v %+v", c.Audit, c.Metrics)
				}
			}},
		{name: "unix socket", yaml: "audit:\n  syslog: { network: unix, address: /dev/log }\n"},
		{name: "unknown network", yaml: "audit:\n  syslog:\n    network: http\n    address: x:1\n",
			wantErr: "bastion.yaml:5: audit.syslog.network: want udp, tcp or unix"},
		{name: "missing network", yaml: "audit:\n  syslog:\n    address: \"127.0.0.1:514\"\n",
			wantErr: "bastion.yaml:4: audit.syslog.network: required"},
		{name: "missing address", yaml: "audit:\n  syslog:\n    network: udp\n",
			wantErr: "bastion.yaml:4: audit.syslog.address: required"},
		{name: "address without port", yaml: "audit:\n  syslog:\n    network: tcp\n    address: siem.example.com\n",
			wantErr: "bastion.yaml:6: audit.syslog.address: want host:port"},
		{name: "relative unix path", yaml: "audit:\n  syslog: { network: unix, address: dev/log }\n",
			wantErr: "bastion.yaml:4: audit.syslog.address: want the absolute path"},
		{name: "unknown facility", yaml: "audit:\n  syslog:\n    network: udp\n    address: \"127.0.0.1:514\"\n    facility: mail\n",
			wantErr: "bastion.yaml:7: audit.syslog.facility: unknown facility \"mail\""},
		{name: "app name with a space", yaml: "audit:\n  syslog: { network: udp, address: \"127.0.0.1:514\", app_name: \"my app\" }\n",
			wantErr: "bastion.yaml:4: audit.syslog.app_name: want at most 48 printable ASCII"},
		{name: "misspelt key", yaml: "audit:\n  syslog:\n    network: udp\n    adress: \"127.0.0.1:514\"\n",
			wantErr: "bastion.yaml:6: audit.syslog.adress: unknown key adress; did you mean address?"},
		{name: "negative queue", yaml: "audit:\n  syslog: { network: udp, address: \"127.0.0.1:514\", queue: -1 }\n",
			wantErr: "bastion.yaml:4: audit.syslog.queue: must be 0"},
		{name: "unknown audit key", yaml: "audit:\n  sislog: {}\n",
			wantErr: "bastion.yaml:4: audit.sislog: unknown key sislog; did you mean syslog?"},
		{name: "bad metrics address", yaml: "metrics:\n  listen: 9102\n",
			wantErr: "bastion.yaml:4: metrics.listen: want host:port"},
		{name: "metrics beyond loopback warns", yaml: "metrics: { listen: \":9102\" }\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "metrics.listen") {
					t.Fatalf("warnings %v", c.Warnings)
				}
			}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(auditHead+tt.yaml), "bastion.yaml", "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
