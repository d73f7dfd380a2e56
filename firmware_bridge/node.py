"""The sensor node's logic: read the IMU, batch samples into frames for each link, obey commands.

Hardware-free: the IMU, heel switch, battery, LED and clock are small driver objects, so this
module runs unchanged on the ESP32-S3 (MicroPython) and on a host (CPython) with simulated drivers
fed by ``dorsimeter.sim``.

Driver interfaces:

* ``imu.read()`` -> list of ``(t_us, acc_m_s2, gyr_rad_s, quat_or_None)`` sampled since the last
  call (``t_us`` device time, wrapping uint32); ``imu.set_rate(hz)`` -> the rate now in use;
  ``imu.rate_hz`` (nominal); ``imu.odr_hz`` (optional: the part's true output rate, which
  DT_US carries, e.g. 104 Hz for 100); ``imu.has_quat``; ``imu.kind`` (0 simulated, 1 BNO08x,
  2 LSM6DSO, 3 ICM-42688).
* ``heel.load()`` -> 0.0..1.0 (FSR load); the node thresholds it with hysteresis.
* ``battery.read()`` -> ``(percent, millivolts)``.
* ``led.blink(seconds)`` (optional).
* ``clock.ticks_us()`` -> device time in µs (wrapping uint32).
* a link: ``send(frame: bytes)``, ``max_payload`` (bytes one write/notification may carry),
  ``trusted`` (True for USB and for an encrypted link to a bonded BLE host).
"""

import struct

import firmware_bridge.wire as wire

RATES_HZ = (25, 50, 100, 200, 400)
HEEL_ON, HEEL_OFF = 0.55, 0.45  # FSR load thresholds (hysteresis)
MAX_LATENCY_US = 40000  # a batch is sent at the latest this long after its first sample
ZERO_SAMPLES_S = 0.5  # gyro bias capture length


class _LinkState:
    def __init__(self, link):
        self.link = link
        self.seq = 0
        self.pending = []  # samples waiting for a frame
        self.pending_heel = None
        self.sent = 0


class SensorNode:
    """Streams frames to every attached link and answers command frames."""

    def __init__(self, imu, heel=None, battery=None, clock=None, led=None, encoding=None,
                 streaming=True):
        self.imu = imu
        self.heel = heel
        self.battery = battery
        self.clock = clock
        self.led = led
        self.encoding = encoding  # None: the best the link's payload allows
        self.streaming = streaming
        self.gyr_bias = [0.0, 0.0, 0.0]
        self._zero = None  # [sums, count, target] while capturing the gyro bias
        self._heel_state = None
        self._heel_raw = 0
        self._links = []
        self._booted = False
        self.commands_rejected = 0

    # -- links
    def attach(self, link):
        """Stream to ``link`` from now on (it gets a STATUS frame first)."""
        st = _LinkState(link)
        self._links.append(st)
        if self._booted:
            self._send_status(st, boot=False)
        return st

    def send_status(self, link):
        """A STATUS frame to ``link`` now (a BLE central that just connected or got trusted)."""
        for st in self._links:
            if st.link is link:
                self._send_status(st, boot=False)

    def detach(self, link):
        self._links = [s for s in self._links if s.link is not link]

    def _now(self):
        return self.clock.ticks_us() & 0xFFFFFFFF if self.clock is not None else 0

    # -- status
    def _flags(self, st, boot):
        f = wire.STATUS_BOOT if boot else 0
        if self.streaming:
            f |= wire.STATUS_STREAMING
        if getattr(st.link, "trusted", False):
            f |= wire.STATUS_SECURE
        return f

    def battery_reading(self):
        if self.battery is None:
            return 0, 0
        pct, mv = self.battery.read()
        return max(0, min(100, int(pct))), max(0, min(65535, int(mv)))

    def _send_status(self, st, boot):
        pct, mv = self.battery_reading()
        st.link.send(wire.encode_status(st.seq, self._now(), self._flags(st, boot),
                                        int(self.imu.rate_hz), pct, mv, self._heel_raw,
                                        getattr(self.imu, "kind", 0)))

    # -- sampling
    def _encoding_for(self, st):
        if self.encoding is not None:
            enc = self.encoding
            if enc == wire.ENC_I16Q and not self.imu.has_quat:
                enc = wire.ENC_I16
            if wire.max_samples_per_frame(st.link.max_payload, enc) > 0:
                return enc
        if self.imu.has_quat and wire.max_samples_per_frame(st.link.max_payload,
                                                            wire.ENC_I16Q) > 0:
            return wire.ENC_I16Q
        if wire.max_samples_per_frame(st.link.max_payload, wire.ENC_I16) > 0:
            return wire.ENC_I16
        return wire.ENC_P12

    def _read_heel(self):
        if self.heel is None:
            return None
        load = self.heel.load()
        self._heel_raw = max(0, min(255, int(load * 255 + 0.5)))
        if self._heel_state is None:
            self._heel_state = load >= 0.5
        elif self._heel_state and load < HEEL_OFF:
            self._heel_state = False
        elif not self._heel_state and load > HEEL_ON:
            self._heel_state = True
        return self._heel_state

    def step(self):
        """Read what the IMU has, send the frames that are full or due. Returns samples read."""
        if not self._booted:
            self._booted = True
            for st in self._links:
                self._send_status(st, boot=True)
        samples = self.imu.read()
        heel = self._read_heel()
        b = self.gyr_bias
        corrected = []
        for t_us, acc, gyr, quat in samples:
            if self._zero is not None:
                z = self._zero
                for k in range(3):
                    z[0][k] += gyr[k]
                z[1] += 1
                if z[1] >= z[2]:
                    self.gyr_bias = b = [s / z[1] for s in z[0]]
                    self._zero = None
            corrected.append((t_us, acc, (gyr[0] - b[0], gyr[1] - b[1], gyr[2] - b[2]), quat))
        if not self.streaming:
            return len(samples)
        for st in self._links:
            self._queue(st, corrected, heel)
        return len(samples)

    def _queue(self, st, samples, heel):
        enc = self._encoding_for(st)
        max_n = wire.max_samples_per_frame(st.link.max_payload, enc)
        for s in samples:
            if st.pending and (heel != st.pending_heel or len(st.pending) >= max_n):
                self._flush(st, enc)
            if not st.pending:
                st.pending_heel = heel
            st.pending.append(s)
        if st.pending and (len(st.pending) >= max_n or
                           ((self._now() - st.pending[0][0]) & 0xFFFFFFFF) >= MAX_LATENCY_US):
            self._flush(st, enc)

    def _flush(self, st, enc):
        """Send the pending samples, in as many frames as the link's payload needs now (it may
        have shrunk since they were queued: a reconnect at a smaller MTU)."""
        pend, st.pending = st.pending, []
        enc = self._encoding_for(st)
        max_n = wire.max_samples_per_frame(st.link.max_payload, enc)
        dt_us = int(1000000 / getattr(self.imu, "odr_hz", self.imu.rate_hz) + 0.5)
        for i in range(0, len(pend), max_n):
            part = pend[i:i + max_n]
            frame = wire.encode_data(st.seq, part[0][0], [(s[1], s[2], s[3]) for s in part],
                                     enc, dt_us, st.pending_heel)
            st.seq = (st.seq + 1) & 0xFFFF
            st.sent += 1
            st.link.send(frame)

    # -- commands
    def handle_command(self, data, link=None, trusted=True, reader=None):
        """Answer every COMMAND frame in ``data``; responses go to ``link`` and are returned.
        Commands that change the node need ``trusted`` (USB, or a bonded BLE host). A link whose
        bytes arrive in pieces passes its own long-lived ``reader`` so that a frame split across
        two calls is not lost; without one, ``data`` must hold whole frames."""
        reader = wire.FrameReader() if reader is None else reader
        out = []
        for mtype, seq, _t, payload in reader.feed(data):
            if mtype != wire.T_COMMAND or not payload:
                continue
            out.extend(self._command(seq, payload[0], payload[1:], link, trusted))
        return out

    def _command(self, seq, cmd, args, link, trusted):
        t = self._now()
        extra = []
        data = b""
        if cmd in wire.MUTATING_COMMANDS and not trusted:
            self.commands_rejected += 1
            status = wire.ST_NOT_ALLOWED
        elif cmd == wire.CMD_SET_RATE:
            status = wire.ST_BAD_ARGS
            if len(args) == 2:
                hz = struct.unpack("<H", args)[0]
                if hz in RATES_HZ:
                    self._flush_all()
                    got = self.imu.set_rate(hz)
                    status = wire.ST_OK if got == hz else wire.ST_BAD_ARGS
                    data = struct.pack("<H", int(got))
        elif cmd == wire.CMD_START:
            self.streaming, status = True, wire.ST_OK
        elif cmd == wire.CMD_STOP:
            self._flush_all()
            self.streaming, status = False, wire.ST_OK
        elif cmd == wire.CMD_ZERO:
            self._zero = [[0.0, 0.0, 0.0], 0, max(1, int(ZERO_SAMPLES_S * self.imu.rate_hz))]
            status = wire.ST_OK
        elif cmd == wire.CMD_IDENTIFY:
            secs = args[0] if args else 3
            if self.led is not None:
                self.led.blink(secs)
            status = wire.ST_OK
        elif cmd == wire.CMD_BATTERY:
            pct, mv = self.battery_reading()
            status, data = wire.ST_OK, struct.pack("<BH", pct, mv)
        elif cmd == wire.CMD_STATUS:
            status = wire.ST_OK
            extra = [st for st in self._links if st.link is link]
        elif cmd == wire.CMD_SET_ENCODING:
            status = wire.ST_BAD_ARGS
            if len(args) == 1 and args[0] in (0, 1, 2, 255):
                self._flush_all()
                self.encoding = None if args[0] == 255 else args[0]
                status = wire.ST_OK
        else:
            status = wire.ST_UNKNOWN
        resp = wire.encode_response(seq, cmd, status, data, t)
        if link is not None:
            link.send(resp)
        for st in extra:
            self._send_status(st, boot=False)
        return [resp]

    def _flush_all(self):
        for st in self._links:
            if st.pending:
                self._flush(st, self._encoding_for(st))
