// dorsimeter sensor node: parametric shell, lid and shin saddle (OpenSCAD 2021.01 or newer).
//
//   openscad -o shell.stl -D 'part="shell"' hardware/enclosure.scad
//   openscad -o lid.stl   -D 'part="lid"'   hardware/enclosure.scad
//   openscad -o /dev/null -D 'part="layout"' hardware/enclosure.scad   (prints the layout)
//
// Coordinates (mm): x along the shin (the USB-C end points down, to the ankle), y across it,
// z up from the cavity's floor; the cavity's corner is the origin. Every size below is a
// part's documented envelope (hardware_docs/bom.md) plus `clr`; the cavity is computed from
// them, so changing a part resizes the shell. tests/firmware_bridge/test_enclosure.py renders both
// parts and checks that each part's envelope (from `layout`) is free of material, closed in,
// and that every opening is open.

part = "shell";  // "shell", "lid", "layout", "assembly"
$fn = 48;

// ---- documented part envelopes [x, y, z] (hardware_docs/bom.md, "Enclosure" section)
xiao = [22.5, 17.8, 4.5];   // Seeed XIAO ESP32S3: 21 x 17.8 mm board, USB-C 1.5 mm over the edge
imu = [25.6, 17.8, 4.6];    // Adafruit LSM6DSOX (4438) / BNO085 (4754) STEMMA QT breakout
cell = [30.0, 20.0, 6.0];   // LiPo size code 602030 (6.0 x 20 x 30 mm), 400 mAh
sw = [8.6, 4.4, 4.7];       // C&K OS102011MA1QN1 slide switch body (actuator 2 mm, 2 mm travel)
btn = [6.0, 6.0, 5.0];      // 6 x 6 mm tactile button, 5 mm tall

clr = 0.4;       // clearance around each part
wall = 2.0;      // side walls
floor_t = 1.6;   // floor, at the saddle's thinnest (the middle)
lid_t = 2.0;
post_h = 2.0;    // boards sit on 2 mm rails (wires to the XIAO's BAT pads go underneath)
gap = 1.6;       // between the IMU breakout and the XIAO
shin_r = 40;     // the saddle's radius: the anteromedial tibia (hardware_docs/mounting.md)
slot = [26, 4];  // strap slots, for a 25 mm strap
bar = 2.5;       // the flange outside each slot, which the strap loops round
usb_open = [13.0, 7.0];   // USB-C cable overmold (12.4 x 6.5 typical) must reach the socket
btn_hole = 4.0;  // the button's 3.5 mm plunger
fsr_hole = 3.5;  // the heel switch's lead

// ---- layout (cavity coordinates)
W = max(cell[1], imu[1], xiao[1]) + 2 * clr;
imu_p = [clr, (W - imu[1]) / 2, post_h];
xiao_p = [imu_p[0] + imu[0] + gap, (W - xiao[1]) / 2, post_h];
L = xiao_p[0] + xiao[0] + clr;
cell_p = [clr, (W - cell[1]) / 2, post_h + max(imu[2], xiao[2]) + 0.5];
H = cell_p[2] + cell[2] + clr;
btn_p = [cell_p[0] + cell[0] + 1.0, (W - btn[1]) / 2, H - btn[2]];  // hangs from the lid
sw_p = [btn_p[0] + btn[0] + 1.0, W - clr - sw[1], cell_p[2]];      // against the +y wall
usb_c = [L, xiao_p[1] + xiao[1] / 2, post_h + 1.0 + 1.6];          // socket centre, on +x
fsr_c = [L, clr + fsr_hole, H - 3];
flange = 1.0 + slot[1] + bar;  // beside each long wall
Wout = W + 2 * wall + 2 * flange;
sag = shin_r - sqrt(shin_r * shin_r - (Wout / 2) * (Wout / 2));
z_bottom = -floor_t;  // the saddle's underside, in the middle

module box(p, s) { translate(p) cube(s); }

module saddle() {
  // the floor and the flanges, hollowed underneath to the shin's curve
  difference() {
    translate([-wall, -wall - flange, z_bottom - sag])
      cube([L + 2 * wall, Wout, sag + floor_t]);
    translate([-wall - 1, W / 2, z_bottom - shin_r]) rotate([0, 90, 0])
      cylinder(r = shin_r, h = L + 2 * wall + 2, $fn = 180);
    for (s = [-1, 1]) {  // strap slots, through
      yc = W / 2 + s * (W / 2 + wall + 1.0 + slot[1] / 2);
      translate([(L - slot[0]) / 2, yc - slot[1] / 2, z_bottom - sag - 1])
        cube([slot[0], slot[1], sag + floor_t + 2]);
    }
  }
}

module shell() {
  difference() {
    union() {
      saddle();
      translate([-wall, -wall, 0]) cube([L + 2 * wall, W + 2 * wall, H + lid_t]);
    }
    box([0, 0, 0], [L, W, H + lid_t + 1]);                            // the cavity
    box([-wall / 2, -wall / 2, H], [L + wall, W + wall, lid_t + 1]);  // the lid's seat
    // USB-C, through the +x wall
    translate([L - 1, usb_c[1] - usb_open[0] / 2, usb_c[2] - usb_open[1] / 2])
      cube([wall + 2, usb_open[0], usb_open[1]]);
    // the heel switch's lead
    translate([L - 1, fsr_c[1], fsr_c[2]]) rotate([0, 90, 0])
      cylinder(d = fsr_hole, h = wall + 2);
    // the slide switch's actuator and its travel, through the +y wall
    translate([sw_p[0] + (sw[0] - 6.0) / 2, W - 1, sw_p[2] + (sw[2] - 2.6) / 2])
      cube([6.0, wall + 2, 2.6]);
  }
  rails(imu_p, imu);
  rails(xiao_p, xiao);
}

module rails(p, s) {
  // 2 mm rails under a board's long edges
  for (y = [p[1], p[1] + s[1] - 2.0]) translate([p[0], y, 0]) cube([s[0], 2.0, post_h]);
}

module lid() {
  // sits in the seat, flush with the top; the button's plunger through it
  difference() {
    translate([-wall / 2 + 0.15, -wall / 2 + 0.15, H])
      cube([L + wall - 0.3, W + wall - 0.3, lid_t]);
    translate([btn_p[0] + btn[0] / 2, btn_p[1] + btn[1] / 2, H - 1])
      cylinder(d = btn_hole, h = lid_t + 2);
  }
}

module layout() {
  echo(str("box xiao ", xiao_p, " ", xiao));
  echo(str("box imu ", imu_p, " ", imu));
  echo(str("box cell ", cell_p, " ", cell));
  echo(str("box switch ", sw_p, " ", sw));
  echo(str("box button ", btn_p, " ", btn));
  // openings: a segment from inside to outside that must not cross material
  echo(str("hole usb ", [L - 0.5, usb_c[1], usb_c[2]], " ", [L + wall + 0.5, usb_c[1], usb_c[2]]));
  echo(str("hole fsr ", [L - 0.5, fsr_c[1], fsr_c[2]], " ", [L + wall + 0.5, fsr_c[1], fsr_c[2]]));
  echo(str("hole switch ", [sw_p[0] + sw[0] / 2, W - 0.5, sw_p[2] + sw[2] / 2], " ",
           [sw_p[0] + sw[0] / 2, W + wall + 0.5, sw_p[2] + sw[2] / 2]));
  echo(str("hole button ", [btn_p[0] + btn[0] / 2, btn_p[1] + btn[1] / 2, H - 0.5], " ",
           [btn_p[0] + btn[0] / 2, btn_p[1] + btn[1] / 2, H + lid_t + 0.5]));
  for (s = [-1, 1]) {
    yc = W / 2 + s * (W / 2 + wall + 1.0 + slot[1] / 2);
    echo(str("hole strap ", [L / 2, yc, z_bottom - sag - 0.5], " ", [L / 2, yc, 0.5]));
  }
  echo(str("outer ", [L + 2 * wall, Wout, H + lid_t + floor_t + sag]));
}

if (part == "shell") shell();
else if (part == "lid") lid();
else if (part == "layout") { layout(); cube(0.01); }
else if (part == "assembly") {
  shell(); lid();
  color("green") { box(xiao_p, xiao); box(imu_p, imu); }
  color("grey") box(cell_p, cell);
  color("red") { box(sw_p, sw); box(btn_p, btn); }
}
