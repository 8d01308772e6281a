package tokenwriter

import (
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// setConfigEnv sets exactly env among the variables Config reads.
func setConfigEnv(t *testing.T, env map[string]string) {
	t.Helper()
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name := typ.Field(i).Tag.Get("envconfig")
		t.Setenv(name, "") // restored after the test
		if v, ok := env[name]; ok {
			t.Setenv(name, v)
		} else {
			os.Unsetenv(name)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	setConfigEnv(t, map[string]string{"AWS_REGION": "eu-west-3"})
	c, err := Load()
	if err != nil {
		t.Fatalf("got error %v; want none", err)
	}
	want := Config{
		AWSRegion:        "eu-west-3",
		TokenFile:        "/etc/nginx/ecr/ecr.conf",
		TokenFileMode:    0o600,
		RefreshInterval:  6 * time.Hour,
		ExpiryMargin:     time.Hour,
		RetryMin:         5 * time.Second,
		RetryMax:         5 * time.Minute,
		CallTimeout:      30 * time.Second,
		NginxTestCommand: "nginx -t -q",
		LogLevel:         slog.LevelInfo,

		ReadyMargin:        30 * time.Minute,
		ProbeInterval:      10 * time.Second,
		RejectedRefreshGap: 10 * time.Second,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v; want %+v", c, want)
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"old image's names", map[string]string{"REGION": "us-east-1", "AWS_KEY": "AKIDOLD", "AWS_SECRET": "s3cr3t"}, func(t *testing.T, c Config) {
			if c.region() != "us-east-1" || c.AWSKey != "AKIDOLD" || c.AWSSecret != "s3cr3t" {
				t.Errorf("got region %q key %q; want us-east-1 AKIDOLD and the secret", c.region(), c.AWSKey)
			}
		}},
		{"AWS_REGION wins", map[string]string{"REGION": "us-east-1", "AWS_REGION": "eu-west-3"}, func(t *testing.T, c Config) {
			if c.region() != "eu-west-3" {
				t.Errorf("got region %q; want eu-west-3", c.region())
			}
		}},
		{"mode without leading zero is octal", map[string]string{"REGION": "r", "TOKEN_FILE_MODE": "640"}, func(t *testing.T, c Config) {
			if c.TokenFileMode != 0o640 {
				t.Errorf("got mode %#o; want 0640", uint32(c.TokenFileMode))
			}
		}},
		{"margin longer than interval is fine", map[string]string{"REGION": "r", "TOKEN_EXPIRY_MARGIN": "8h", "TOKEN_REFRESH_INTERVAL": "1h", "LOG_LEVEL": "debug"}, func(t *testing.T, c Config) {
			if c.ExpiryMargin != 8*time.Hour || c.LogLevel != slog.LevelDebug {
				t.Errorf("got margin %s level %s; want 8h DEBUG", c.ExpiryMargin, c.LogLevel)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setConfigEnv(t, tc.env)
			c, err := Load()
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", nil, []string{"AWS_REGION: required (or REGION)"}},
		{"unparseable values", map[string]string{
			"REGION": "r", "TOKEN_REFRESH_INTERVAL": "6", "TOKEN_RETRY_MAX": "soon", "TOKEN_FILE_MODE": "0900", "LOG_LEVEL": "loud",
		}, []string{"TOKEN_REFRESH_INTERVAL:", "TOKEN_RETRY_MAX:", "TOKEN_FILE_MODE:", "LOG_LEVEL:"}},
		{"semantic problems", map[string]string{
			"AWS_KEY": "AKID", "TOKEN_RETRY_MIN": "10m", "TOKEN_RETRY_MAX": "1m", "AWS_CALL_TIMEOUT": "0s",
			"TOKEN_EXPIRY_MARGIN": "-1s", "ECR_REGISTRY_ID": "12345", "ECR_REGISTRY_HOST": `ecr"; }`,
			"NGINX_TEST_COMMAND": " ", "TOKEN_FILE": "",
		}, []string{
			"AWS_REGION: required (or REGION)", "AWS_SECRET: required when AWS_KEY is set",
			"TOKEN_RETRY_MIN: must not exceed TOKEN_RETRY_MAX", "AWS_CALL_TIMEOUT: must be positive",
			"TOKEN_EXPIRY_MARGIN: must not be negative", "ECR_REGISTRY_ID:", "ECR_REGISTRY_HOST:",
			"NGINX_TEST_COMMAND: required", "TOKEN_FILE: required",
		}},
		{"secret without key", map[string]string{"REGION": "r", "AWS_SECRET": "s"}, []string{"AWS_KEY: required when AWS_SECRET is set"}},
		{"new variables", map[string]string{
			"REGION": "r", "TOKEN_READY_MARGIN": "-1m", "TOKEN_PROBE_INTERVAL": "-1s", "TOKEN_REJECTED_REFRESH_GAP": "-1s",
			"TOKENWRITER_LISTEN_ADDR": "9101",
		}, []string{
			"TOKEN_READY_MARGIN: must not be negative", "TOKEN_PROBE_INTERVAL: must not be negative",
			"TOKEN_REJECTED_REFRESH_GAP: must not be negative", "TOKENWRITER_LISTEN_ADDR: want host:port",
		}},
		{"bad pinned port", map[string]string{"REGION": "r", "ECR_REGISTRY_HOST": "h.example:0"}, []string{"ECR_REGISTRY_HOST:"}},
		{"bad registries next to an unparseable value", map[string]string{"REGION": "r", "ECR_REGISTRIES": "x", "TOKEN_RETRY_MIN": "bad"},
			[]string{"TOKEN_RETRY_MIN:", `ECR_REGISTRIES: entry "x"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setConfigEnv(t, tc.env)
			_, err := Load()
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q; want it to contain %q", err, w)
				}
			}
			if got, want := strings.Count(err.Error(), "\n")+1, len(tc.want); got != want {
				t.Errorf("got %d problems (%q); want %d", got, err, want)
			}
		})
	}
}

func TestConfigHidesSecret(t *testing.T) {
	c := Config{AWSKey: "AKID", AWSSecret: "wJalrXUtnFEMI"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "wJalrXUtnFEMI") {
			t.Errorf("got %q; want the secret hidden", s)
		}
	}
}
