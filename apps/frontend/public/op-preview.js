// Shows what the chosen operation does: a small sample picture, drawn here, before and after it.
// Drawn on canvases, so the page's Content-Security-Policy needs nothing more for it. An
// operation this script does not know is named with its description, without a picture.
'use strict';

(() => {
  const select = document.getElementById('op');
  const preview = document.getElementById('op-preview');
  const before = document.getElementById('op-preview-before');
  const after = document.getElementById('op-preview-after');
  const caption = document.getElementById('op-preview-caption');
  if (!select || !preview || !before || !after || !caption || !before.getContext) return;

  const WIDTH = before.width;
  const HEIGHT = before.height;

  /** A landscape with a sun on the left and a house on the right: every flip and turn shows. */
  const drawSample = (ctx) => {
    const sky = ctx.createLinearGradient(0, 0, 0, HEIGHT);
    sky.addColorStop(0, '#3d8bfd');
    sky.addColorStop(1, '#cfe6ff');
    ctx.fillStyle = sky;
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    ctx.fillStyle = '#ffc107';
    ctx.beginPath();
    ctx.arc(20, 16, 9, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = '#2e9d47';
    ctx.fillRect(0, 46, WIDTH, HEIGHT - 46);
    ctx.fillStyle = '#f4f1ea';
    ctx.fillRect(56, 30, 28, 18);
    ctx.fillStyle = '#d63a2f';
    ctx.beginPath();
    ctx.moveTo(52, 31);
    ctx.lineTo(70, 16);
    ctx.lineTo(88, 31);
    ctx.fill();
    ctx.fillStyle = '#6f42c1';
    ctx.fillRect(64, 37, 7, 11);
  };

  const clamp = (v) => (v > 255 ? 255 : v);
  /** Each pixel's colour on its own, as the worker does it. */
  const COLOURS = {
    'swap-red-blue': (r, g, b) => [b, g, r],
    grayscale: (r, g, b) => {
      const y = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      return [y, y, y];
    },
    invert: (r, g, b) => [255 - r, 255 - g, 255 - b],
    sepia: (r, g, b) => [
      clamp(0.393 * r + 0.769 * g + 0.189 * b),
      clamp(0.349 * r + 0.686 * g + 0.168 * b),
      clamp(0.272 * r + 0.534 * g + 0.131 * b),
    ],
  };
  /** Flips and turns: the angle to turn by, and whether to mirror across each axis. */
  const MOVES = {
    flip: { turn: 0, scaleX: 1, scaleY: -1 },
    mirror: { turn: 0, scaleX: -1, scaleY: 1 },
    'rotate-90': { turn: 90, scaleX: 1, scaleY: 1 },
    'rotate-180': { turn: 180, scaleX: 1, scaleY: 1 },
    'rotate-270': { turn: 270, scaleX: 1, scaleY: 1 },
  };

  /** A box blur of the given radius, twice over: close enough to the worker's fast blur at this size. */
  const blur = (image, radius) => {
    const { data, width, height } = image;
    const pass = (source, horizontal) => {
      const out = new Uint8ClampedArray(source.length);
      for (let y = 0; y < height; y += 1) {
        for (let x = 0; x < width; x += 1) {
          const sum = [0, 0, 0, 0];
          let count = 0;
          for (let d = -radius; d <= radius; d += 1) {
            const sx = horizontal ? Math.min(width - 1, Math.max(0, x + d)) : x;
            const sy = horizontal ? y : Math.min(height - 1, Math.max(0, y + d));
            const at = (sy * width + sx) * 4;
            for (let c = 0; c < 4; c += 1) sum[c] += source[at + c];
            count += 1;
          }
          const at = (y * width + x) * 4;
          for (let c = 0; c < 4; c += 1) out[at + c] = sum[c] / count;
        }
      }
      return out;
    };
    let pixels = data;
    for (let i = 0; i < 2; i += 1) pixels = pass(pass(pixels, true), false);
    data.set(pixels);
  };

  const sampleContext = before.getContext('2d');
  drawSample(sampleContext);

  /** Draws `op` applied to the sample; false when this script does not know the operation. */
  const drawAfter = (op) => {
    const ctx = after.getContext('2d');
    const move = MOVES[op];
    if (move) {
      const sideways = move.turn % 180 !== 0;
      after.width = sideways ? HEIGHT : WIDTH;
      after.height = sideways ? WIDTH : HEIGHT;
      ctx.translate(after.width / 2, after.height / 2);
      ctx.rotate((move.turn * Math.PI) / 180);
      ctx.scale(move.scaleX, move.scaleY);
      ctx.drawImage(before, -WIDTH / 2, -HEIGHT / 2);
      return true;
    }
    if (op === select.form?.dataset.resizeOp) {
      // Smaller: to the width and height given with the upload.
      after.width = Math.round(WIDTH * 0.6);
      after.height = Math.round(HEIGHT * 0.6);
      ctx.drawImage(before, 0, 0, after.width, after.height);
      return true;
    }
    if (!COLOURS[op] && op !== 'blur') return false;
    after.width = WIDTH;
    after.height = HEIGHT;
    const image = sampleContext.getImageData(0, 0, WIDTH, HEIGHT);
    if (op === 'blur') blur(image, 2);
    else {
      const colour = COLOURS[op];
      const { data } = image;
      for (let at = 0; at < data.length; at += 4) {
        const [r, g, b] = colour(data[at], data[at + 1], data[at + 2]);
        data[at] = r;
        data[at + 1] = g;
        data[at + 2] = b;
      }
    }
    ctx.putImageData(image, 0, 0);
    return true;
  };

  const show = () => {
    const option = select.selectedOptions[0];
    if (!option) return;
    const op = option.value;
    const drawn = drawAfter(op);
    after.hidden = !drawn;
    preview.querySelector('.op-preview-arrow').hidden = !drawn;
    after.setAttribute('aria-label', `The sample picture after ${op}`);
    // The option says "<op> — <what it does>".
    caption.textContent = `${option.textContent.replace(' — ', ': ')}${drawn ? '' : ' (no preview of this one)'}`;
    preview.dataset.op = op;
  };

  select.addEventListener('change', show);
  show();
  preview.hidden = false;
})();
