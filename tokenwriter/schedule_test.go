package tokenwriter

import (
	"testing"
	"time"
)

func TestNextAfterSuccess(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name             string
		life             time.Duration
		interval, margin time.Duration
		want             time.Duration // after now
	}{
		{"interval first", 12 * time.Hour, 6 * time.Hour, time.Hour, 6 * time.Hour},
		{"margin first", 12 * time.Hour, 6 * time.Hour, 8 * time.Hour, 4 * time.Hour},
		{"short sts session", 90 * time.Minute, 6 * time.Hour, time.Hour, 30 * time.Minute},
		{"margin equals life", time.Hour, 6 * time.Hour, time.Hour, 30 * time.Minute},
		{"margin longer than life", 2 * time.Second, 6 * time.Hour, time.Hour, time.Second},
		{"margin longer than life, short interval", 10 * time.Minute, time.Minute, time.Hour, 5 * time.Minute},
		{"zero margin", time.Hour, 6 * time.Hour, 0, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nextAfterSuccess(now, now.Add(tc.life), tc.interval, tc.margin).Sub(now)
			if got != tc.want {
				t.Errorf("got now+%s; want now+%s", got, tc.want)
			}
		})
	}
}

func TestNextAfterFailure(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		left         time.Duration // of the token in place; 0: unknown
		delay, floor time.Duration
		want         time.Duration
	}{
		{"unknown token", 0, 5 * time.Minute, time.Second, 5 * time.Minute},
		{"token outlives the delay", time.Hour, 5 * time.Minute, time.Second, 5 * time.Minute},
		{"token lapses first", 4 * time.Minute, 5 * time.Minute, time.Second, 2 * time.Minute},
		{"token lapses very soon", time.Second, 5 * time.Minute, time.Second, time.Second},
		{"floor below delay", 100 * time.Millisecond, 5 * time.Minute, 10 * time.Millisecond, 50 * time.Millisecond},
		{"already expired", -time.Minute, 5 * time.Minute, time.Second, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var expires time.Time
			if tc.left != 0 {
				expires = now.Add(tc.left)
			}
			got := nextAfterFailure(now, expires, tc.delay, tc.floor).Sub(now)
			if got != tc.want {
				t.Errorf("got now+%s; want now+%s", got, tc.want)
			}
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	for _, tc := range []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"no jitter", 0, []time.Duration{5, 10, 20, 40, 80, 160, 300, 300, 300}},
		{"most jitter", 0.999999, []time.Duration{5, 5, 10, 20, 40, 80, 150, 150, 150}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff{min: 5 * time.Second, max: 5 * time.Minute, rand: func() float64 { return tc.rand }}
			for attempt, want := range tc.want {
				got := b.delay(attempt).Round(time.Second)
				if got != want*time.Second {
					t.Errorf("attempt %d: got %s; want %s", attempt, got, want*time.Second)
				}
			}
			if got := b.delay(1000); got > b.max {
				t.Errorf("attempt 1000: got %s; want at most %s", got, b.max)
			}
		})
	}
}
