fn main() {
    println!("klaxon skeleton");
}
