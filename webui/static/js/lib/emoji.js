// The emoji picker's small built-in set: unicode emoji with an English name each (the name is
// the button's accessible label and what the picker's filter matches).
export const EMOJI = [
  ["👍", "thumbs up"], ["👎", "thumbs down"], ["❤️", "red heart"], ["😂", "tears of joy"], ["😊", "smiling face"],
  ["😮", "surprised"], ["😢", "crying face"], ["😡", "angry face"], ["🎉", "party popper"], ["🔥", "fire"],
  ["👀", "eyes"], ["🙏", "folded hands"], ["👏", "clapping hands"], ["🤔", "thinking face"], ["😅", "sweat smile"],
  ["🙌", "raising hands"], ["💯", "hundred points"], ["✅", "check mark"], ["❌", "cross mark"], ["⭐", "star"],
  ["🌱", "seedling"], ["☕", "hot beverage"], ["🍞", "bread"], ["🍎", "red apple"], ["🌧️", "rain cloud"],
  ["☀️", "sun"], ["🎵", "musical note"], ["📚", "books"], ["💡", "light bulb"], ["🚀", "rocket"],
  ["🤝", "handshake"], ["👋", "waving hand"],
];

/** The emoji whose name contains `query` (all of them for an empty query). */
export function findEmoji(query) {
  const q = String(query || "").trim().toLowerCase();
  return q ? EMOJI.filter(([, name]) => name.includes(q)) : EMOJI;
}
