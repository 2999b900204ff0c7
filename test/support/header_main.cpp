// Links the per-header translation units (each includes one public header only).
int main() {
  return 0;
}
