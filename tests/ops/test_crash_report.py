"""A service that crashes in C code says where in its log (policykit.runtime enables
faulthandler), against the real Kafka broker and PostgreSQL server."""

import signal

from tests.support import start_service


def test_a_crashed_service_leaves_every_threads_traceback_in_its_log(platform_topics,
                                                                     database_url, tmp_path):
    service = start_service("services.drafting", tmp_path, {
        "KAFKA_BOOTSTRAP_SERVERS": platform_topics, "DATABASE_URL": database_url})
    try:
        service.process.send_signal(signal.SIGSEGV)  # as a fault in an extension raises it
        assert service.process.wait(timeout=30) == -signal.SIGSEGV
    finally:
        service.terminate()
    log = service.log.read_text(errors="replace")
    assert "Fatal Python error: Segmentation fault" in log
    assert "most recent call first" in log and "Thread 0x" in log
