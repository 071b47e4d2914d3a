export default { files: ["test/**/*.test.js"] };
