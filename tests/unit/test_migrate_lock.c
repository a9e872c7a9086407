/* Unit tests: migrate-runner/lock.c - Lease lock decisions and API flows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "../../lib/duration.c"
#include "../../lib/json.c"
#include "../../lib/log.c"
#include "../../migrate-runner/keeper.c"
#include "../../migrate-runner/lock.c"
#include "test_migrate_fake_kube.h"

#define LEASE "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/mig"

static cJSON *lease(const char *holder, const char *renew, const char *rv, int dur)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
	         "{\"metadata\":{\"name\":\"mig\",\"resourceVersion\":\"%s\"},\"spec\":{%s%s%s"
	         "\"renewTime\":\"%s\",\"leaseDurationSeconds\":%d,\"leaseTransitions\":4}}",
	         rv, holder ? "\"holderIdentity\":\"" : "", holder ? holder : "", holder ? "\"," : "", renew, dur);
	return cJSON_Parse(buf);
}

static void decide(void **state)
{
	struct lock_observation obs = {{0}, 0};
	int64_t wait = -1;
	cJSON *l;

	(void)state;
	l = lease(NULL, "t1", "1", 10);
	assert_int_equal(lock_decide(l, "me", 0, 30, &obs, &wait), LOCK_FREE);
	cJSON_Delete(l);
	l = lease("", "t1", "1", 10);
	assert_int_equal(lock_decide(l, "me", 0, 30, &obs, NULL), LOCK_FREE);
	cJSON_Delete(l);
	l = lease("me", "t1", "1", 10);
	assert_int_equal(lock_decide(l, "me", 0, 30, &obs, NULL), LOCK_OURS);
	cJSON_Delete(l);

	/* someone else: the clock starts at our first sight, not at renewTime */
	l = lease("other", "t1", "1", 10);
	assert_int_equal(lock_decide(l, "me", 5000, 30, &obs, &wait), LOCK_HELD);
	assert_int_equal(wait, 10000);
	assert_int_equal(lock_decide(l, "me", 14999, 30, &obs, &wait), LOCK_HELD);
	assert_int_equal(wait, 1);
	cJSON_Delete(l);
	/* a renewal restarts it */
	l = lease("other", "t2", "2", 10);
	assert_int_equal(lock_decide(l, "me", 15000, 30, &obs, &wait), LOCK_HELD);
	assert_int_equal(lock_decide(l, "me", 24999, 30, &obs, &wait), LOCK_HELD);
	assert_int_equal(lock_decide(l, "me", 25000, 30, &obs, &wait), LOCK_EXPIRED);
	cJSON_Delete(l);
	/* no or silly duration: ours */
	memset(&obs, 0, sizeof(obs));
	l = lease("other", "t3", "3", 0);
	assert_int_equal(lock_decide(l, "me", 0, 30, &obs, &wait), LOCK_HELD);
	assert_int_equal(wait, 30000);
	assert_int_equal(lock_decide(l, "me", 30000, 30, &obs, &wait), LOCK_EXPIRED);
	cJSON_Delete(l);
}

static void micro_time(void **state)
{
	char buf[40];

	(void)state;
	assert_string_equal(lock_micro_time(1700000000123LL, buf, sizeof(buf)), "2023-11-14T22:13:20.123000Z");
	assert_string_equal(lock_micro_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000000Z");
}

/* The wait callback advances the fake clock; returns 1 once *stop_after hits 0. */
static int waits, stop_after = -1;
static int fake_wait(void *ctx, int64_t ms)
{
	(void)ctx;
	waits++;
	fk_clock += ms;
	if (stop_after > 0 && --stop_after == 0)
		return 1;
	return 0;
}

static void acquire_create_and_exclusive(void **state)
{
	struct lock *a, *b;
	struct kube_error err;
	cJSON *cur;

	(void)state;
	fk_reset();
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	b = lock_new(&fk_client, "mig", "pod-b", 30);
	assert_int_equal(lock_acquire(a, fk_clock + 60000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	cur = fk_get(LEASE);
	assert_string_equal(json_str(cur, "spec.holderIdentity"), "pod-a");
	assert_int_equal(json_int(cur, "spec.leaseDurationSeconds", 0), 30);
	assert_int_equal(json_int(cur, "spec.leaseTransitions", -1), 0);
	assert_non_null(json_str(cur, "spec.acquireTime"));
	assert_int_equal(strlen(json_str(cur, "spec.renewTime")), 27);

	/* b waits while a renews */
	waits = 0;
	for (int i = 0; i < 5; i++) {
		fk_clock += 10000;
		assert_int_equal(lock_renew(a, fk_clock + 5000, &err), LOCK_RENEWED);
		assert_int_equal(lock_acquire(b, fk_clock + 9000, fake_wait, NULL, &err), LOCK_TIMEOUT);
	}
	assert_true(waits > 0);
	assert_string_equal(lock_other_holder(b), "pod-a");

	/* release: b may take it at once, and it counts a transition */
	assert_int_equal(lock_release(a, fk_clock + 5000, &err), KUBE_OK);
	assert_null(json_str(fk_get(LEASE), "spec.holderIdentity"));
	waits = 0;
	assert_int_equal(lock_acquire(b, fk_clock + 60000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	assert_int_equal(waits, 0);
	assert_string_equal(json_str(fk_get(LEASE), "spec.holderIdentity"), "pod-b");
	assert_int_equal(json_int(fk_get(LEASE), "spec.leaseTransitions", -1), 1);
	/* a's renewal now finds b */
	assert_int_equal(lock_renew(a, fk_clock + 5000, &err), LOCK_LOST);
	assert_string_equal(lock_other_holder(a), "pod-b");
	/* releasing what we lost leaves b alone */
	assert_int_equal(lock_release(a, fk_clock + 5000, &err), KUBE_OK);
	assert_string_equal(json_str(fk_get(LEASE), "spec.holderIdentity"), "pod-b");
	lock_free(a);
	lock_free(b);
	fk_reset();
}

static void take_over_after_expiry(void **state)
{
	struct lock *b;
	struct kube_error err;
	int64_t start;

	(void)state;
	fk_reset();
	/* a crashed holder: its renewTime is from another node's clock and irrelevant */
	fk_put_raw(LEASE, lease("crashed", "2099-01-01T00:00:00.000000Z", "1", 5));
	b = lock_new(&fk_client, "mig", "pod-b", 30);
	start = fk_clock;
	assert_int_equal(lock_acquire(b, fk_clock + 60000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	assert_true(fk_clock - start >= 5000);
	assert_true(fk_clock - start < 8000);
	assert_string_equal(json_str(fk_get(LEASE), "spec.holderIdentity"), "pod-b");
	assert_int_equal(json_int(fk_get(LEASE), "spec.leaseTransitions", -1), 5);
	assert_int_equal(json_int(fk_get(LEASE), "spec.leaseDurationSeconds", -1), 30);
	lock_free(b);
	fk_reset();
}

static void retake_own_lease(void **state)
{
	struct lock *a;
	struct kube_error err;

	(void)state;
	fk_reset();
	/* our container restarted: same pod name holds it */
	fk_put_raw(LEASE, lease("pod-a", "2020-01-01T00:00:00.000000Z", "1", 30));
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	waits = 0;
	assert_int_equal(lock_acquire(a, fk_clock + 1000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	assert_int_equal(waits, 0);
	assert_int_equal(json_int(fk_get(LEASE), "spec.leaseTransitions", -1), 4);
	lock_free(a);
	fk_reset();
}

static int steal_count;
static void steal(const char *path)
{
	if (steal_count++ == 0)
		fk_put_raw(path, lease("thief", "x", "0", 30));
}

static void conflicts(void **state)
{
	struct lock *a;
	struct kube_error err;

	(void)state;
	fk_reset();
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	assert_int_equal(lock_acquire(a, fk_clock + 1000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	/* a 409 while still ours (our own retried write): re-read and renew */
	fk_conflicts = 1;
	assert_int_equal(lock_renew(a, fk_clock + 5000, &err), LOCK_RENEWED);
	assert_string_equal(json_str(fk_get(LEASE), "spec.holderIdentity"), "pod-a");
	/* a 409 because someone took it */
	steal_count = 0;
	fk_before_put = steal;
	assert_int_equal(lock_renew(a, fk_clock + 5000, &err), LOCK_LOST);
	fk_before_put = NULL;
	assert_string_equal(json_str(fk_get(LEASE), "spec.holderIdentity"), "thief");
	lock_free(a);

	/* racing a take-over: the loser re-reads and waits */
	fk_reset();
	fk_put_raw(LEASE, lease(NULL, "x", "0", 30));
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	steal_count = 0;
	fk_before_put = steal;
	assert_int_equal(lock_acquire(a, fk_clock + 3000, fake_wait, NULL, &err), LOCK_TIMEOUT);
	fk_before_put = NULL;
	assert_string_equal(json_str(fk_get(LEASE), "spec.holderIdentity"), "thief");
	lock_free(a);

	/* the lease was deleted under us */
	fk_reset();
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	assert_int_equal(lock_acquire(a, fk_clock + 1000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	fk_reset();
	assert_int_equal(lock_renew(a, fk_clock + 5000, &err), LOCK_LOST);
	lock_free(a);
	fk_reset();
}

/*
 * Issue 15 item 6: a server that answers every write 409 made lock_acquire
 * spin without sleeping, past --lock-timeout and deaf to signals.
 */
static void persistent_conflict_is_bounded(void **state)
{
	struct lock *a;
	struct kube_error err;
	int64_t t0;

	(void)state;
	fk_reset();
	fk_put_raw(LEASE, lease(NULL, "x", "0", 30));
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	fk_conflicts = 1000;
	waits = 0;
	t0 = fk_clock;
	assert_int_equal(lock_acquire(a, fk_clock + 5000, fake_wait, NULL, &err), LOCK_TIMEOUT);
	assert_true(fk_clock - t0 >= 5000);
	assert_true(waits >= 3);
	assert_true(fk_requests < 40); /* backed off: not hundreds of requests */
	assert_int_equal(err.rc, KUBE_ECONFLICT);
	/* and a signal ends it */
	stop_after = 2;
	assert_int_equal(lock_acquire(a, fk_clock + 60000, fake_wait, NULL, &err), LOCK_INTERRUPTED);
	stop_after = -1;
	fk_conflicts = 0;
	lock_free(a);
	fk_reset();
}

static void errors(void **state)
{
	struct lock *a;
	struct kube_error err;

	(void)state;
	fk_reset();
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	/* unreachable for a while: waited out */
	fk_unavailable = 3;
	assert_int_equal(lock_acquire(a, fk_clock + 60000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	/* renewal errors are reported as such */
	fk_unavailable = 1;
	assert_int_equal(lock_renew(a, fk_clock + 5000, &err), LOCK_RENEW_ERR);
	assert_int_equal(err.rc, KUBE_EUNAVAILABLE);
	assert_int_equal(lock_release(a, fk_clock + 5000, &err), KUBE_OK);
	/* unreachable until the deadline */
	fk_unavailable = 1000;
	assert_int_equal(lock_acquire(a, fk_clock + 5000, fake_wait, NULL, &err), LOCK_TIMEOUT);
	fk_unavailable = 0;
	/* RBAC */
	fk_forbidden = 1;
	assert_int_equal(lock_acquire(a, fk_clock + 60000, fake_wait, NULL, &err), LOCK_ERROR);
	assert_int_equal(err.rc, KUBE_EFORBIDDEN);
	fk_forbidden = 0;
	/* a signal while waiting */
	fk_put_raw(LEASE, lease("other", "x", "0", 30));
	stop_after = 2;
	assert_int_equal(lock_acquire(a, fk_clock + 60000, fake_wait, NULL, &err), LOCK_INTERRUPTED);
	stop_after = -1;
	lock_free(a);
	fk_reset();
}

/* The keeper renews on its own thread and reports a lost lock through its fd (issue 15 item 7). */
static void keeper_renews_then_reports_loss(void **state)
{
	struct lock *a;
	struct keeper *k;
	struct kube_error err;
	struct pollfd p;
	int before;

	(void)state;
	fk_reset();
	a = lock_new(&fk_client, "mig", "pod-a", 30);
	assert_int_equal(lock_acquire(a, fk_clock + 1000, fake_wait, NULL, &err), LOCK_ACQUIRED);
	before = fk_requests;
	k = keeper_start(a, "mig", 300); /* renews every 100 ms */
	assert_non_null(k);
	p = (struct pollfd){.fd = keeper_fd(k), .events = POLLIN, .revents = 0};
	assert_int_equal(poll(&p, 1, 350), 0); /* healthy: nothing to report */
	assert_true(fk_requests - before >= 2);
	/* someone takes the Lease (inside the keeper's own next PUT: no race on the fake store) */
	steal_count = 0;
	fk_before_put = steal;
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(keeper_budget(k), 0); /* 300 ms lease: no time left to wait */
	assert_int_equal(keeper_stop(k, kube_now_ms() + 1000), 0);
	fk_before_put = NULL;
	assert_string_equal(lock_other_holder(a), "thief");
	/* a healthy keeper stops at once */
	k = keeper_start(a, "mig", 30000);
	assert_non_null(k);
	assert_int_equal(keeper_stop(k, kube_now_ms() + 1000), 0);
	assert_int_equal(keeper_stop(NULL, 0), 0);
	lock_free(a);
	fk_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(decide),
	    cmocka_unit_test(micro_time),
	    cmocka_unit_test(acquire_create_and_exclusive),
	    cmocka_unit_test(take_over_after_expiry),
	    cmocka_unit_test(retake_own_lease),
	    cmocka_unit_test(conflicts),
	    cmocka_unit_test(errors),
	    cmocka_unit_test(persistent_conflict_is_bounded),
	    cmocka_unit_test(keeper_renews_then_reports_loss),
	};
	log_init("test", LOG_TEXT, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
