"""``dorsimeter sensor-cal``: a sensor calibration from a raw CSV of still poses.

Lay the clip still on each face of a box (and a few tilts), 2-3 s each, recording a raw CSV;
this fits the accelerometer offset and scale (cross-axis terms too with nine poses or more) and
the gyro bias, and stores them per sensor in the data directory (``sensors/<id>.json``), where
``analyze --sensor-cal ID`` finds them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dorsimeter.cli.common import add_home_option, guard_outputs

if TYPE_CHECKING:  # scipy.optimize is imported by the commands that calibrate
    pass


def register(sub) -> None:
    p = sub.add_parser("sensor-cal", help="sensor calibration (accel offset/scale, gyro bias) "
                                          "from a raw CSV of still poses")
    p.add_argument("raw", help="raw CSV: the clip laid still on each face of a box, 2-3 s each")
    p.add_argument("--id", required=True, dest="sensor_id",
                   help="the sensor's id (e.g. its BLE address or serial number)")
    p.add_argument("--out", help="write the JSON here instead of the data directory")
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.core.sensor_cal import calibrate_sensor
    from dorsimeter.io.calfiles import save_sensor_calibration
    from dorsimeter.io.rawcsv import read_raw_csv

    guard_outputs(args, {"--out": ([args.out], False)}, inputs=[args.raw])
    rec = read_raw_csv(args.raw)
    cal = calibrate_sensor(rec.acc_m_s2, rec.gyr_rad_s, rec.rate_hz, args.sensor_id)
    path = save_sensor_calibration(cal, home=args.home, path=args.out)
    print(cal.summary())
    print(f"wrote {path}")
    return 0
