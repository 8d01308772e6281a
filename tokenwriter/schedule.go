package tokenwriter

import "time"

// nextAfterSuccess is min(now+interval, expiresAt-margin); when the margin is
// as long as the token's remaining life or longer, it is never sooner than half
// that life, so that a short-lived token is not fetched again at once.
func nextAfterSuccess(now, expiresAt time.Time, interval, margin time.Duration) time.Time {
	next := now.Add(interval)
	if t := expiresAt.Add(-margin); t.Before(next) {
		next = t
	}
	life := expiresAt.Sub(now)
	if margin >= life {
		if half := now.Add(life / 2); next.Before(half) {
			next = half
		}
	}
	if next.Before(now) {
		return now
	}
	return next
}

// nextAfterFailure is now+delay, unless the token in place (expiresAt, zero
// when unknown) would expire before then: the next try comes at half its
// remaining life, but not sooner than floor.
func nextAfterFailure(now, expiresAt time.Time, delay, floor time.Duration) time.Time {
	next := now.Add(delay)
	if expiresAt.IsZero() || !expiresAt.Before(next) {
		return next
	}
	left := expiresAt.Sub(now)
	if left <= 0 {
		return next // already expired: nothing left to save, keep backing off
	}
	return now.Add(min(delay, max(left/2, floor)))
}

// backoff is exponential with jitter: the n-th retry (from 0) waits up to
// min·2ⁿ capped at max; jitter takes up to half of that off, never going below min.
type backoff struct {
	min, max time.Duration
	rand     func() float64 // in [0, 1)
}

func (b backoff) delay(attempt int) time.Duration {
	d := b.min
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	jittered := d - time.Duration(b.rand()*float64(d/2))
	return max(jittered, b.min)
}
